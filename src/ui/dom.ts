/** A tiny element builder, so pages read as a tree without a framework. */

export type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  /** Becomes `data-testid`, the stable hook for browser tests. */
  testid?: string;
  text?: string;
  title?: string;
  href?: string;
  type?: string;
  value?: string;
  placeholder?: string;
  disabled?: boolean;
  dataset?: Record<string, string>;
  attrs?: Record<string, string>;
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Array<Child | Child[]>): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.class) element.className = props.class;
  if (props.testid) element.dataset.testid = props.testid;
  if (props.text !== undefined) element.textContent = props.text;
  if (props.title) element.title = props.title;
  if (props.href !== undefined) element.setAttribute('href', props.href);
  if (props.type !== undefined) element.setAttribute('type', props.type);
  if (props.placeholder !== undefined) element.setAttribute('placeholder', props.placeholder);
  if (props.value !== undefined) (element as HTMLInputElement).value = props.value;
  if (props.disabled) element.setAttribute('disabled', '');
  for (const [name, value] of Object.entries(props.dataset ?? {})) element.dataset[name] = value;
  for (const [name, value] of Object.entries(props.attrs ?? {})) element.setAttribute(name, value);
  for (const [name, listener] of Object.entries(props.on ?? {})) element.addEventListener(name, listener as EventListener);
  append(element, children);
  return element;
}

export function append(parent: Node, children: Array<Child | Child[]>): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Replaces all children of `parent`. */
export function replaceChildren(parent: Element, ...children: Array<Child | Child[]>): void {
  parent.replaceChildren();
  append(parent, children);
}

/** A `<select>` with the given options; `value` preselects one. */
export function select(testid: string, options: ReadonlyArray<readonly [value: string, label: string]>, value: string, onChange: (value: string) => void): HTMLSelectElement {
  const element = h('select', { testid, on: { change: () => onChange(element.value) } }, ...options.map(([v, label]) => h('option', { value: v, text: label })));
  element.value = value;
  return element;
}

/** A labelled form control. */
export function field(label: string, control: HTMLElement): HTMLLabelElement {
  return h('label', { class: 'field' }, h('span', { class: 'field-label', text: label }), control);
}

/** Runs `fn` at most once per animation frame, with the latest arguments. */
export function throttleFrame(fn: () => void): () => void {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      fn();
    });
  };
}

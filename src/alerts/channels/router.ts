import { GpError, SEVERITIES } from '../../model/index.js';
import type { AlertEvent, Severity, TransitionKind } from '../../model/index.js';
import type { TemplateName } from './channel.js';

/**
 * Which transitions go to which channels. Every field that is set must match (a list matches
 * any of its values); a field left out matches everything. `minSeverity` compares the
 * transition's severity (info < warning < critical).
 */
export interface AlertRoute {
  readonly name?: string | undefined;
  readonly streams?: readonly string[] | undefined;
  readonly types?: readonly string[] | undefined;
  /** An alert without a site never matches a route that lists sites. */
  readonly sites?: readonly string[] | undefined;
  readonly severities?: readonly Severity[] | undefined;
  readonly minSeverity?: Severity | undefined;
  readonly kinds?: readonly TransitionKind[] | undefined;
  readonly channels: readonly string[];
  /** Undefined: the channel's default template. */
  readonly template?: TemplateName | undefined;
}

/** One channel a transition goes to, with the template to render it with (undefined: the channel's own). */
export interface RouteTarget {
  readonly channel: string;
  readonly template: TemplateName | undefined;
  /** The first route that sent the transition to this channel. */
  readonly route: string;
}

/** Picks the channels of each transition. */
export interface AlertRouter {
  /**
   * Each channel at most once, in the order routes and their channels are listed; the first
   * matching route's template wins. A transition marked `muted` (maintenance window) goes nowhere.
   */
  targets(event: AlertEvent): RouteTarget[];
  /** Every channel some route names. */
  channels(): string[];
}

/**
 * A router over a list of routes. A transition that matches several routes naming one channel
 * is sent to that channel once.
 *
 * @example
 * const router = createAlertRouter([{ sites: ['s-1'], minSeverity: 'warning', channels: ['ops'], template: 'slack' }]);
 * router.targets(event); // [{ channel: 'ops', template: 'slack', route: 'route-0' }] for a warning at site s-1
 */
export function createAlertRouter(routes: readonly AlertRoute[]): AlertRouter {
  const compiled = routes.map((route, index) => {
    // A route read from untyped input may lack its channels.
    const channels: readonly string[] = route.channels ?? [];
    if (channels.length === 0) {
      throw new GpError('GP_CONFIG_INVALID', `routes[${index}].channels: expected a list of at least one channel name, got ${JSON.stringify(route.channels)}`, { field: `routes[${index}].channels` });
    }
    if (route.minSeverity !== undefined && !SEVERITIES.includes(route.minSeverity)) {
      throw new GpError('GP_CONFIG_INVALID', `routes[${index}].minSeverity: expected info, warning or critical, got ${JSON.stringify(route.minSeverity)}`, { field: `routes[${index}].minSeverity` });
    }
    return {
      name: route.name ?? `route-${index}`,
      streams: toSet(route.streams),
      types: toSet(route.types),
      sites: toSet(route.sites),
      severities: toSet(route.severities),
      minRank: route.minSeverity === undefined ? -1 : SEVERITIES.indexOf(route.minSeverity),
      kinds: toSet(route.kinds),
      channels: [...channels],
      template: route.template,
    };
  });
  return {
    targets(event: AlertEvent): RouteTarget[] {
      const { alert, transition } = event;
      // Muted (inside a maintenance window): recorded by the store, delivered nowhere.
      if (transition.muted === true) return [];
      const chosen = new Map<string, RouteTarget>();
      for (const route of compiled) {
        if (route.streams !== undefined && !route.streams.has(alert.stream)) continue;
        if (route.types !== undefined && !route.types.has(alert.type)) continue;
        if (route.sites !== undefined && (alert.site === undefined || !route.sites.has(alert.site))) continue;
        if (route.severities !== undefined && !route.severities.has(transition.severity)) continue;
        if (SEVERITIES.indexOf(transition.severity) < route.minRank) continue;
        if (route.kinds !== undefined && !route.kinds.has(transition.kind)) continue;
        for (const channel of route.channels) {
          if (!chosen.has(channel)) chosen.set(channel, { channel, template: route.template, route: route.name });
        }
      }
      return [...chosen.values()];
    },
    channels(): string[] {
      return [...new Set(compiled.flatMap((route) => route.channels))];
    },
  };
}

function toSet<T>(values: readonly T[] | undefined): ReadonlySet<T> | undefined {
  return values === undefined ? undefined : new Set(values);
}

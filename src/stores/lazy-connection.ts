/**
 * The connection of a server store, opened on first use and shared by every call after it. A
 * failed open is forgotten, so the next call tries again (for example once the server is up).
 *
 * @example
 * private readonly connection = new LazyConnection(() => this.connect());
 * const pool = await this.connection.get();
 */
export class LazyConnection<T> {
  private opening: Promise<T> | undefined;

  constructor(private readonly connect: () => Promise<T>) {}

  /** The connection, opening it when there is none (or the last attempt failed). */
  get(): Promise<T> {
    if (this.opening === undefined) {
      const opening = this.connect();
      this.opening = opening;
      opening.catch(() => {
        if (this.opening === opening) this.opening = undefined;
      });
    }
    return this.opening;
  }

  /** The open or opening connection, if any (for closing it), without starting one. */
  get current(): Promise<T> | undefined {
    return this.opening;
  }
}

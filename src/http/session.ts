import { assertJsonValue, type JsonValue, type SessionData } from '../store/json-value.ts';

/**
 * The handler's view of its session. It records which keys changed, so that
 * the commit of an existing session is a patch of just those keys: two
 * parallel requests of one client that change different keys both keep them.
 *
 * Values are checked at `set` (plain JSON only). A nested object changed in
 * place after `get` is not seen as a change: `set` it again.
 */
export class Session {
  #id: string | null;
  readonly #isNew: boolean;
  // A Map, not an object: keys such as "__proto__" stay plain data.
  #data: Map<string, JsonValue>;
  #changed = new Set<string>();
  #cleared = false;
  #renew = false;
  #drop = false;
  #onChange: (() => void) | null;

  /** @internal created by createHandler; `onChange` is told of the first change. */
  constructor(id: string | null, data: SessionData | null, onChange: (() => void) | null = null) {
    this.#onChange = onChange;
    this.#id = id;
    this.#isNew = id === null;
    this.#data = new Map(data ? Object.entries(data) : []);
  }

  /** The session id, or null until a new session is saved. */
  get id(): string | null {
    return this.#id;
  }

  /** True when no live session came with the request. */
  get isNew(): boolean {
    return this.#isNew;
  }

  get(key: string): any {
    return this.#data.get(key);
  }

  has(key: string): boolean {
    return this.#data.has(key);
  }

  set(key: string, value: JsonValue): this {
    if (typeof key !== 'string') throw new TypeError(`session.set(key, value): key must be a string, got ${typeof key}`);
    assertJsonValue(value, key);
    this.#changing();
    this.#data.set(key, value);
    this.#changed.add(key);
    return this;
  }

  delete(key: string): boolean {
    if (!this.#data.has(key)) return false;
    this.#changing();
    this.#data.delete(key);
    this.#changed.add(key);
    return true;
  }

  /** Removes every key; the commit stores `{}` (plus what is set afterwards). */
  clear(): void {
    this.#changing();
    this.#data.clear();
    this.#changed.clear();
    this.#cleared = true;
  }

  /** A new id at commit, data kept, old id deleted: the defence against session fixation. */
  renew(): void {
    this.#changing();
    this.#renew = true;
  }

  /** Deleted from the store at commit, and the cookie expired. */
  drop(): void {
    this.#changing();
    this.#drop = true;
  }

  toJSON(): SessionData {
    return Object.fromEntries(this.#data) as SessionData;
  }

  #changing(): void {
    const onChange = this.#onChange;
    if (onChange) {
      this.#onChange = null;
      onChange();
    }
  }

  /** @internal */
  get state() {
    return {
      dropped: this.#drop,
      renew: this.#renew,
      cleared: this.#cleared,
      modified: this.#changed.size > 0 || this.#cleared,
      // A new session is only worth storing when it holds something.
      empty: this.#data.size === 0,
    };
  }

  /** @internal The changed keys as a patch: set what exists, unset what was deleted. */
  patch(): { set: SessionData; unset: string[] } {
    const set: SessionData = {};
    const unset: string[] = [];
    for (const key of this.#changed) {
      if (this.#data.has(key)) Object.defineProperty(set, key, { value: this.#data.get(key), enumerable: true, writable: true, configurable: true });
      else unset.push(key);
    }
    return { set, unset };
  }

  /** @internal After a commit: the id it was stored under, and nothing pending. */
  committed(id: string | null): void {
    this.#id = id;
    this.#changed.clear();
    this.#cleared = false;
    this.#renew = false;
  }
}

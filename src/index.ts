// The public entry point of supervised-sessions.
export { startSessionApp, SessionApp } from './app.ts';
export type { AppState, AppStatus, ChildName, ChildStatus, RestartEvent, SweepReport, SweepTrigger } from './app.ts';
export type { SessionAppConfig, Timestamp, Durability } from './config.ts';
export type { SessionStore, SessionPatch } from './store/session-store.ts';
export type { JsonValue, SessionData } from './store/json-value.ts';
export { setupStore, clearStore, dropStore } from './helpers.ts';
export {
  SessionError, ConfigError, TableExistsError, TableNotExistsError,
  StoreUnavailableError, SessionTooLargeError, AppStoppedError,
} from './errors.ts';

/**
 * @orchestra/client — the typed audience client.
 *
 * @since 0.1.0
 */
export * as UnixSocket from "./UnixSocket.js"

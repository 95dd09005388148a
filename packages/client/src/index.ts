/**
 * @orchestra/client — the typed audience client: `OrchestraClient` over the
 * conductor's HTTP API or its Unix socket, and the original socket
 * protocol's functions (`UnixSocket`).
 *
 * @since 0.1.0
 */
export * as ClientError from "./ClientError.js"
export * as OrchestraClient from "./OrchestraClient.js"
export * as UnixSocket from "./UnixSocket.js"

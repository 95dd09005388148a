/**
 * @orchestra/transport-tls — the real transport of Orchestra: TCP + mutual
 * TLS with length-prefixed JSON frames and heartbeats, plus the development
 * certificate tooling behind `orchestra certs`.
 *
 * The default export is the plugin factory (`transportTls`).
 *
 * @since 0.1.0
 */
import { transportTls } from "./TransportTls.js"

export * as Certs from "./Certs.js"
export * as Config from "./Config.js"
export * as Frame from "./Frame.js"
export * as TransportTls from "./TransportTls.js"
export { layerConductor, layerPlayer, transportTls } from "./TransportTls.js"

export default transportTls

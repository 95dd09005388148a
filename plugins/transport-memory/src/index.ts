/**
 * @orchestra/transport-memory — in-process players for tests and embedded
 * use, with the same contract as the TLS transport.
 *
 * The default export is the plugin factory (`transportMemory`).
 *
 * @since 0.1.0
 */
import { transportMemory } from "./TransportMemory.js"

export * as TransportMemory from "./TransportMemory.js"
export { layer, MemoryHub, transportMemory } from "./TransportMemory.js"

export default transportMemory

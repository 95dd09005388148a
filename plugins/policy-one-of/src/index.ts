/**
 * @orchestra/policy-one-of — the `one-of` scheduler policy: one task that
 * any listed player may take, failing over to the next player on a soft
 * outcome. The default export is the plugin factory, so the package can be
 * named directly in config.
 *
 * @since 0.1.0
 */
import { policyOneOf } from "./OneOf.js"

export * as OneOf from "./OneOf.js"
export { policyOneOf }
export default policyOneOf

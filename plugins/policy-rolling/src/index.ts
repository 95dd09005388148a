/**
 * @orchestra/policy-rolling — the `rolling` scheduler policy: one task per
 * target player, started in batches (a count or a percentage) in the job's
 * order, aborting the rollout when failures exceed `maxFailures`. The
 * default export is the plugin factory, so the package can be named
 * directly in config.
 *
 * @since 0.1.0
 */
import { policyRolling } from "./Rolling.js"

export * as Rolling from "./Rolling.js"
export { policyRolling }
export default policyRolling

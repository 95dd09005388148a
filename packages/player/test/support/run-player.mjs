// Runs the compiled player daemon, as `orchestra player --config <file>` does:
// node test/support/run-player.mjs <config.yaml>
import { NodeRuntime } from "@effect/platform-node"
import { PlayerLive } from "@orchestra/player"

NodeRuntime.runMain(PlayerLive.run(process.argv[2]))

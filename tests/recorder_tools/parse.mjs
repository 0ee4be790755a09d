// Reads each Chrome Recorder recording named on the command line with @puppeteer/replay's own
// parser, and prints one JSON object: for each file either {"flow": <what parse() returned>,
// "types": {<selector part>: <its form by getSelectorType>}} or {"error": <why parse() refused it>}.
import { readFileSync } from "node:fs";
import { getSelectorType, parse } from "@puppeteer/replay";

const results = {};
for (const file of process.argv.slice(2)) {
  try {
    const flow = parse(JSON.parse(readFileSync(file, "utf8")));
    const types = {};
    for (const step of flow.steps) {
      for (const alternative of step.selectors ?? []) {
        for (const part of [alternative].flat()) {
          types[part] = getSelectorType(part);
        }
      }
    }
    results[file] = { flow, types };
  } catch (error) {
    results[file] = { error: String(error?.message ?? error) };
  }
}
process.stdout.write(JSON.stringify(results));

// Checks KEDA resources against KEDA's schemas (@kubernetes-models/keda, generated from KEDA's API
// types): reads a JSON array of objects on stdin, prints a JSON array of
// {kind, name, errors} (errors empty when the object is valid, or naming why it cannot be checked).
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = objects.map((object) => {
  const name = object?.metadata?.name ?? "";
  const Model = object?.apiVersion === "keda.sh/v1alpha1" ? keda[object.kind] : undefined;
  if (typeof Model !== "function") {
    return { kind: object?.kind, name, errors: [`no KEDA schema for ${object?.apiVersion} ${object?.kind}`] };
  }
  try {
    new Model(object).validate();
    return { kind: object.kind, name, errors: [] };
  } catch (error) {
    const details = (error.details ?? []).map((d) => `${d.instancePath} ${d.message}`);
    return { kind: object.kind, name, errors: details.length ? details : [String(error.message ?? error)] };
  }
});
process.stdout.write(JSON.stringify(results));

// Checks KEDA resources against KEDA's schemas, twice: those generated from KEDA's current API
// types (@kubernetes-models/keda 2.0.0) and those generated from the openAPIV3Schema of the CRDs
// of the KEDA 2.10.1 release (@kubernetes-models/keda 0.4.2, installed as keda-crd-2.10). Reads a
// JSON array of objects on stdin and prints a JSON array of {kind, name, errors}: errors is empty
// when both accept the object, else each names the schema set and why.
import * as current from "@kubernetes-models/keda/keda.sh/v1alpha1";
import * as crd from "keda-crd-2.10/keda.sh/v1alpha1";

const SCHEMAS = [
  ["KEDA API types", current],
  ["KEDA 2.10.1 CRD", crd],
];

function check(label, models, object) {
  const Model = object?.apiVersion === "keda.sh/v1alpha1" ? models[object.kind] : undefined;
  if (typeof Model !== "function") {
    return [`${label}: no schema for ${object?.apiVersion} ${object?.kind}`];
  }
  try {
    new Model(object).validate();
    return [];
  } catch (error) {
    return [`${label}: ${String(error.message ?? error)}`];
  }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = objects.map((object) => ({
  kind: object?.kind,
  name: object?.metadata?.name ?? "",
  errors: SCHEMAS.flatMap(([label, models]) => check(label, models, object)),
}));
process.stdout.write(JSON.stringify(results));

// `node default_azure_credential.mjs SCOPE`: what @azure/identity's DefaultAzureCredential gets
// for SCOPE in this environment, as one JSON line {token, seconds, error} on stdout (token null
// and the error's name and message on failure; seconds: how long getToken took).
import { DefaultAzureCredential } from "@azure/identity";

const [scope] = process.argv.slice(2);
if (!scope) {
  process.stderr.write("usage: node default_azure_credential.mjs SCOPE\n");
  process.exit(2);
}
const started = performance.now();
let token = null;
let error = "";
try {
  ({ token } = await new DefaultAzureCredential().getToken(scope));
} catch (e) {
  error = `${e.name}: ${e.message}`;
}
const seconds = (performance.now() - started) / 1000;
process.stdout.write(JSON.stringify({ token, seconds, error }) + "\n");

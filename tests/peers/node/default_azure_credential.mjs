// `node default_azure_credential.mjs SCOPE`: the token @azure/identity's DefaultAzureCredential
// gets for SCOPE in this environment, as JSON {token, expiresOnTimestamp, seconds} on stdout
// (seconds: how long getToken took). On failure: the error's name and message on stderr, exit 1.
import { DefaultAzureCredential } from "@azure/identity";

const [scope] = process.argv.slice(2);
if (!scope) {
  process.stderr.write("usage: node default_azure_credential.mjs SCOPE\n");
  process.exit(2);
}
const started = performance.now();
try {
  const { token, expiresOnTimestamp } = await new DefaultAzureCredential().getToken(scope);
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(JSON.stringify({ token, expiresOnTimestamp, seconds }) + "\n");
} catch (error) {
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exit(1);
}

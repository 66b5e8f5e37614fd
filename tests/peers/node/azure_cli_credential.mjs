// `node azure_cli_credential.mjs SCOPE [TENANT]`: the token @azure/identity's AzureCliCredential
// gets for SCOPE (from whatever `az` is first on PATH), as JSON {token, expiresOnTimestamp} on
// stdout. On failure: the error's name and message on stderr, exit 1.
import { AzureCliCredential } from "@azure/identity";

const [scope, tenantId] = process.argv.slice(2);
if (!scope) {
  process.stderr.write("usage: node azure_cli_credential.mjs SCOPE [TENANT]\n");
  process.exit(2);
}
try {
  const credential = new AzureCliCredential(tenantId ? { tenantId } : {});
  const { token, expiresOnTimestamp } = await credential.getToken(scope);
  process.stdout.write(JSON.stringify({ token, expiresOnTimestamp }) + "\n");
} catch (error) {
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exit(1);
}

// `node managed_identity.mjs CLIENT SCOPE_OR_RESOURCE [OBJECT_ID]`: a token from the App Service
// managed identity this environment names (IDENTITY_ENDPOINT, IDENTITY_HEADER), as one JSON line
// {token, expiresOnTimestamp} on stdout, through CLIENT: `identity` (@azure/identity's
// ManagedIdentityCredential, given a scope) or `msal` (@azure/msal-node's
// ManagedIdentityApplication, given a resource). OBJECT_ID picks a user-assigned identity by
// object id (tokentray: another account). On failure: {error} and exit 1.
import { ManagedIdentityCredential } from "@azure/identity";
import { ManagedIdentityApplication } from "@azure/msal-node";

const [client, target, objectId] = process.argv.slice(2);
try {
  let answer;
  if (client === "identity") {
    const credential = new ManagedIdentityCredential(objectId ? { objectId } : {});
    const { token, expiresOnTimestamp } = await credential.getToken(target);
    answer = { token, expiresOnTimestamp };
  } else if (client === "msal") {
    const app = new ManagedIdentityApplication(
      objectId ? { managedIdentityIdParams: { userAssignedObjectId: objectId } } : {});
    const result = await app.acquireToken({ resource: target });
    answer = { token: result.accessToken, expiresOnTimestamp: result.expiresOn.getTime() };
  } else {
    throw new Error(`unknown client ${client}: identity or msal`);
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
} catch (e) {
  process.stdout.write(JSON.stringify({ error: `${e.name}: ${e.message}` }) + "\n");
  process.exit(1);
}

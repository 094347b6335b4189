// "Log in with Gatehouse" from Node, with openid-client (v6): the code flow with PKCE and a
// nonce, the ID token's signature checked against Gatehouse's published keys, userinfo, and a
// refresh.
//
// The tests run this very script (tests/api/oidc_node.rs): they start Gatehouse, register the
// application, and play the user in the browser. The script prints the URL to send the user
// to, reads on its standard input the URL the user came back to, and prints what it learnt,
// each as one line of JSON. A web application does the same in two request handlers: the
// first redirects to the authorization URL, the second serves the redirect URI.
//
//   GATEHOUSE_URL=https://id.example.com CLIENT_ID=… CLIENT_SECRET=… \
//   REDIRECT_URI=https://notes.example.com/callback node rp.mjs
import { createInterface } from 'node:readline';
import * as client from 'openid-client';

const issuer = new URL(process.env.GATEHOUSE_URL);
const redirectUri = process.env.REDIRECT_URI;
const scope = process.env.SCOPE ?? 'openid email offline_access';

// Discovery: the endpoints and keys, from {issuer}/.well-known/openid-configuration.
// A public client (a browser or mobile app) has no secret and authenticates with PKCE alone.
const secret = process.env.CLIENT_SECRET;
const config = await client.discovery(
  issuer,
  process.env.CLIENT_ID,
  {
    client_secret: secret,
    id_token_signed_response_alg: process.env.ID_TOKEN_ALG ?? 'ES256',
  },
  secret ? client.ClientSecretBasic(secret) : client.None(),
  {
    execute: [
      // Check the ID token's signature with the keys at jwks_uri, too.
      client.enableNonRepudiationChecks,
      // Only for a Gatehouse on plain http (the tests' 127.0.0.1); never in production.
      ...(issuer.protocol === 'http:' ? [client.allowInsecureRequests] : []),
    ],
  },
);

// 1. Send the user to Gatehouse. Keep the verifier, the state and the nonce (a web
//    application keeps them in its session) for when the user comes back.
const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorizationUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope,
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});
print({ authorization_url: authorizationUrl.href });

// 2. The user comes back to the redirect URI with a code. Exchanging it checks the state,
//    the `iss` of the response, and the ID token: signature, issuer, audience, expiry, nonce.
const callbackUrl = new URL(await firstLine());
const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
  pkceCodeVerifier: codeVerifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();

// 3. Who is it? The ID token says; userinfo says it again for that subject.
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

// 4. With offline_access, a refresh token: new tokens later, without the user.
let refreshed = null;
if (tokens.refresh_token) {
  const again = await client.refreshTokenGrant(config, tokens.refresh_token);
  refreshed = {
    access_token_changed: again.access_token !== tokens.access_token,
    refresh_token_changed: again.refresh_token !== tokens.refresh_token,
    sub: again.claims()?.sub ?? null,
  };
}

print({
  claims,
  userinfo,
  token_type: tokens.token_type,
  scope: tokens.scope,
  expires_in: tokens.expires_in,
  refreshed,
});

function print(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function firstLine() {
  const lines = createInterface({ input: process.stdin });
  return new Promise((resolve, reject) => {
    lines.once('line', (line) => {
      resolve(line.trim());
      lines.close();
    });
    lines.once('close', () => reject(new Error('no callback URL on standard input')));
  });
}

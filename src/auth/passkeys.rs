//! Passkeys (WebAuthn): the relying party's half of registering a credential and of proving
//! possession of one, with `webauthn-rs`. The state of a ceremony in progress comes out of
//! here as JSON, to be kept server-side by the caller, and goes back in to finish it.
//!
//! Every credential is registered as a discoverable credential (a resident key) with user
//! verification required, so that one passkey serves both as a second factor after a
//! password and for passwordless sign-in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, Url, Webauthn,
    WebauthnBuilder,
};
use webauthn_rs_proto::{ResidentKeyRequirement, UserVerificationPolicy};

pub use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use crate::domain::UserId;

/// The name authenticators show for this relying party.
const RP_NAME: &str = "Gatehouse";

/// Why passkeys cannot be offered with these settings.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyConfigError {
    #[error("PUBLIC_URL is not a URL: {0}")]
    NotAUrl(String),
    /// WebAuthn needs a domain name as the relying-party id (an IP address is refused).
    #[error("the host of PUBLIC_URL is not a domain name")]
    NoDomain,
}

/// Why a ceremony could not be finished. Callers answer alike for all of them.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The authenticator's answer did not verify (signature, challenge, origin, flags, …).
    #[error("the authenticator's answer is not valid: {0}")]
    Rejected(String),
    /// The browser says the credential is not discoverable, and it must be.
    #[error("the credential is not discoverable")]
    NotDiscoverable,
    /// A stored state or credential that does not read back.
    #[error("stored passkey data is unreadable: {0}")]
    Corrupt(String),
}

/// The relying party: builds ceremonies and checks their answers.
pub struct Passkeys {
    webauthn: Webauthn,
    rp_id: String,
}

/// A ceremony begun: the options for the browser, and the state to keep until it finishes.
#[derive(Debug)]
pub struct Begun<T> {
    pub options: T,
    /// JSON, opaque to the caller.
    pub state: String,
}

/// A credential just registered.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// Base64url (no padding): how assertions name it.
    pub credential_id: String,
    /// The credential (public key, counter, flags) as stored: JSON, opaque to the caller.
    pub stored: String,
}

/// A verified assertion.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// Base64url id of the credential that signed.
    pub credential_id: String,
    /// The credential with its counter and backup state brought up to date, to store back.
    pub stored: String,
    /// Whether the authenticator verified its user (PIN or biometrics).
    pub user_verified: bool,
}

impl Passkeys {
    /// The relying party of `public_url`: its host is the relying-party id, and it is the one
    /// origin whose ceremonies are accepted.
    pub fn new(public_url: &str) -> Result<Passkeys, PasskeyConfigError> {
        let origin =
            Url::parse(public_url).map_err(|e| PasskeyConfigError::NotAUrl(e.to_string()))?;
        let rp_id = origin
            .domain()
            .ok_or(PasskeyConfigError::NoDomain)?
            .to_owned();
        let webauthn = WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|builder| builder.rp_name(RP_NAME).build())
            .map_err(|_| PasskeyConfigError::NoDomain)?;
        Ok(Passkeys { webauthn, rp_id })
    }

    /// The relying-party id: the host of `PUBLIC_URL`.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Begins registering a passkey for a user who has the credentials `existing` (stored
    /// forms) already: those are excluded, so an authenticator is not registered twice.
    pub fn begin_registration(
        &self,
        user_id: UserId,
        email: &str,
        existing: &[String],
    ) -> Result<Begun<CreationChallengeResponse>, PasskeyError> {
        let exclude = existing
            .iter()
            .map(|stored| read_credential(stored).map(|key| key.cred_id().clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(user_id.as_uuid(), email, email, Some(exclude))
            .map_err(rejected)?;
        // webauthn-rs asks for a non-discoverable credential by default. A discoverable one
        // is what passwordless sign-in needs; the browser reports whether it made one
        // (credProps), which `finish_registration` checks. User verification stays required,
        // in the options and in the state that verifies the answer.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
            selection.user_verification = UserVerificationPolicy::Required;
        }
        Ok(Begun {
            options,
            state: write_json(&state)?,
        })
    }

    /// Finishes a registration: checks the authenticator's answer against the kept state.
    pub fn finish_registration(
        &self,
        state: &str,
        response: &RegisterPublicKeyCredential,
    ) -> Result<NewCredential, PasskeyError> {
        let state: PasskeyRegistration = read_json(state)?;
        // The browser's word (unsigned, like everything it adds): when it says the key is
        // not resident, the passkey could not sign in without a password.
        if response
            .extensions
            .cred_props
            .as_ref()
            .and_then(|props| props.rk)
            == Some(false)
        {
            return Err(PasskeyError::NotDiscoverable);
        }
        let key = self
            .webauthn
            .finish_passkey_registration(response, &state)
            .map_err(rejected)?;
        Ok(NewCredential {
            credential_id: encode_id(key.cred_id()),
            stored: write_json(&key)?,
        })
    }

    /// Begins a passwordless sign-in: any discoverable credential of this relying party may
    /// answer, with user verification. Asked for as a modal request (the browser's prompt
    /// after a click), not as conditional mediation.
    pub fn begin_sign_in(&self) -> Result<Begun<RequestChallengeResponse>, PasskeyError> {
        let (mut options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(rejected)?;
        options.mediation = None;
        Ok(Begun {
            options,
            state: write_json(&state)?,
        })
    }

    /// Who a sign-in's answer claims to be: the user handle and the credential id. Nothing
    /// is verified yet; the caller loads that credential and calls [`Passkeys::finish_sign_in`].
    pub fn identify(&self, response: &PublicKeyCredential) -> Option<(UserId, String)> {
        let (handle, credential_id) = self
            .webauthn
            .identify_discoverable_authentication(response)
            .ok()?;
        Some((UserId::from_uuid(handle), encode_id(credential_id)))
    }

    /// Finishes a passwordless sign-in with the credential the answer named (stored form).
    pub fn finish_sign_in(
        &self,
        state: &str,
        response: &PublicKeyCredential,
        stored: &str,
    ) -> Result<Assertion, PasskeyError> {
        let state: DiscoverableAuthentication = read_json(state)?;
        let mut key = read_credential(stored)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(response, state, &key)
            .map_err(rejected)?;
        key.update_credential(&result);
        Ok(Assertion {
            credential_id: encode_id(result.cred_id()),
            stored: write_json(&key)?,
            user_verified: result.user_verified(),
        })
    }

    /// Begins a second factor: one of `credentials` (stored forms, the user's) must answer.
    pub fn begin_assertion(
        &self,
        credentials: &[String],
    ) -> Result<Begun<RequestChallengeResponse>, PasskeyError> {
        let keys = credentials
            .iter()
            .map(String::as_str)
            .map(read_credential)
            .collect::<Result<Vec<_>, _>>()?;
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&keys)
            .map_err(rejected)?;
        Ok(Begun {
            options,
            state: write_json(&state)?,
        })
    }

    /// Finishes a second factor. The state holds the credentials that were allowed; the
    /// answering one's stored form comes back with its counter brought up to date.
    pub fn finish_assertion(
        &self,
        state: &str,
        response: &PublicKeyCredential,
        stored: &str,
    ) -> Result<Assertion, PasskeyError> {
        let state: PasskeyAuthentication = read_json(state)?;
        let mut key = read_credential(stored)?;
        let result = self
            .webauthn
            .finish_passkey_authentication(response, &state)
            .map_err(rejected)?;
        if key.update_credential(&result).is_none() {
            return Err(PasskeyError::Rejected(
                "another credential answered".to_owned(),
            ));
        }
        Ok(Assertion {
            credential_id: encode_id(result.cred_id()),
            stored: write_json(&key)?,
            user_verified: result.user_verified(),
        })
    }
}

/// The credential id an assertion names, base64url as stored.
pub fn credential_id_of(response: &PublicKeyCredential) -> String {
    encode_id(response.get_credential_id())
}

fn encode_id(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn read_credential(stored: &str) -> Result<Passkey, PasskeyError> {
    read_json(stored)
}

fn read_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(json).map_err(|e| PasskeyError::Corrupt(e.to_string()))
}

fn write_json<T: serde::Serialize>(value: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(value).map_err(|e| PasskeyError::Corrupt(e.to_string()))
}

fn rejected(error: webauthn_rs::prelude::WebauthnError) -> PasskeyError {
    PasskeyError::Rejected(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_host_of_the_public_url() {
        let passkeys = Passkeys::new("http://localhost:8080").unwrap();
        assert_eq!(passkeys.rp_id(), "localhost");
        let passkeys = Passkeys::new("https://auth.example.com").unwrap();
        assert_eq!(passkeys.rp_id(), "auth.example.com");
    }

    #[test]
    fn an_address_is_no_relying_party() {
        assert!(matches!(
            Passkeys::new("http://127.0.0.1:8080"),
            Err(PasskeyConfigError::NoDomain)
        ));
    }

    #[test]
    fn registration_asks_for_a_discoverable_credential_and_user_verification() {
        let passkeys = Passkeys::new("https://auth.example.com").unwrap();
        let begun = passkeys
            .begin_registration(UserId::new(), "ada@example.com", &[])
            .unwrap();
        let json = serde_json::to_value(&begun.options).unwrap();
        let selection = &json["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "required");
        assert_eq!(selection["requireResidentKey"], true);
        assert_eq!(selection["userVerification"], "required");
        assert_eq!(json["publicKey"]["rp"]["id"], "auth.example.com");
        assert_eq!(json["publicKey"]["rp"]["name"], "Gatehouse");
    }

    #[test]
    fn a_sign_in_is_a_modal_request_for_any_discoverable_credential() {
        let passkeys = Passkeys::new("https://auth.example.com").unwrap();
        let begun = passkeys.begin_sign_in().unwrap();
        let json = serde_json::to_value(&begun.options).unwrap();
        assert!(json.get("mediation").is_none());
        assert_eq!(json["publicKey"]["userVerification"], "required");
        let allowed = json["publicKey"]["allowCredentials"].as_array();
        assert!(allowed.is_none_or(|a| a.is_empty()));
    }
}

//! A software passkey for the API tests: `webauthn-authenticator-rs`'s `SoftPasskey` (which
//! reports user verification), made discoverable. `SoftPasskey` keeps every key it makes
//! but refuses to be asked for a resident key and, asked for any credential of a site, finds
//! none; a discoverable authenticator instead remembers which user each of its credentials is
//! for and answers with that user's handle. This wrapper adds exactly that, and the browser's
//! part: it turns the server's JSON options into the authenticator's and its answer into the
//! WebAuthn `toJSON()` shape the server takes.

use std::collections::HashMap;

use serde_json::Value;
use url::Url;
use webauthn_authenticator_rs::error::WebauthnCError;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, PublicKeyCredentialCreationOptions,
    PublicKeyCredentialRequestOptions, RegisterPublicKeyCredential, RequestChallengeResponse,
    ResidentKeyRequirement,
};

/// The origin the test apps run under: `PUBLIC_URL` (a secure context over plain HTTP).
pub const PASSKEY_ORIGIN: &str = "http://localhost:8080";

/// A discoverable software passkey authenticator holding any number of credentials.
pub struct Authenticator {
    inner: SoftPasskey,
    /// Credential id -> the user handle it was registered with.
    handles: HashMap<Vec<u8>, Vec<u8>>,
    /// Which credential answers a request that allows any (the user's pick in a browser).
    pub pick: Option<Vec<u8>>,
}

impl Authenticator {
    pub fn new() -> Authenticator {
        Authenticator {
            // `true`: the soft token claims to have verified its user.
            inner: SoftPasskey::new(true),
            handles: HashMap::new(),
            pick: None,
        }
    }

    /// Answers `navigator.credentials.create()` for the JSON of a `register/begin` answer.
    pub fn register(&mut self, begun: &Value) -> Value {
        self.try_register(begun)
            .expect("the authenticator registers")
    }

    /// As [`Authenticator::register`]; an error where the authenticator refuses (it holds an
    /// excluded credential).
    pub fn try_register(&mut self, begun: &Value) -> Result<Value, WebauthnCError> {
        let options: CreationChallengeResponse =
            serde_json::from_value(begun.clone()).expect("creation options");
        let credential = self.do_registration(Url::parse(PASSKEY_ORIGIN).unwrap(), options)?;
        Ok(serde_json::to_value(credential).unwrap())
    }

    /// Answers `navigator.credentials.get()` for the JSON of a `begin` answer.
    pub fn sign(&mut self, begun: &Value) -> Result<Value, WebauthnCError> {
        let options: RequestChallengeResponse =
            serde_json::from_value(begun.clone()).expect("request options");
        let credential = self.do_authentication(Url::parse(PASSKEY_ORIGIN).unwrap(), options)?;
        Ok(serde_json::to_value(credential).unwrap())
    }
}

impl AuthenticatorBackend for Authenticator {
    fn perform_register(
        &mut self,
        origin: Url,
        mut options: PublicKeyCredentialCreationOptions,
        timeout_ms: u32,
    ) -> Result<RegisterPublicKeyCredential, WebauthnCError> {
        let handle = options.user.id.to_vec();
        // This authenticator keeps every key: asked for a resident one, it makes one.
        if let Some(selection) = options.authenticator_selection.as_mut() {
            selection.require_resident_key = false;
            selection.resident_key = Some(ResidentKeyRequirement::Discouraged);
        }
        let excluded: Vec<Vec<u8>> = options
            .exclude_credentials
            .iter()
            .flatten()
            .map(|c| c.id.to_vec())
            .collect();
        if excluded.iter().any(|id| self.handles.contains_key(id)) {
            return Err(WebauthnCError::Internal);
        }
        let credential = self.inner.perform_register(origin, options, timeout_ms)?;
        self.handles.insert(credential.raw_id.to_vec(), handle);
        Ok(credential)
    }

    fn perform_auth(
        &mut self,
        origin: Url,
        mut options: PublicKeyCredentialRequestOptions,
        timeout_ms: u32,
    ) -> Result<PublicKeyCredential, WebauthnCError> {
        if options.allow_credentials.is_empty() {
            // Discoverable: the authenticator offers its own credentials for the site.
            let id = self
                .pick
                .clone()
                .or_else(|| self.handles.keys().next().cloned())
                .ok_or(WebauthnCError::Internal)?;
            options.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
                type_: "public-key".to_owned(),
                id,
                transports: None,
            }];
        } else if let Some(pick) = &self.pick {
            options.allow_credentials.retain(|c| &c.id == pick);
        }
        let mut credential = self.inner.perform_auth(origin, options, timeout_ms)?;
        // The user handle is not signed: a discoverable authenticator adds it.
        credential.response.user_handle = self.handles.get(credential.raw_id.as_slice()).cloned();
        Ok(credential)
    }
}

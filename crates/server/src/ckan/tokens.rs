//! `api_token_create`: a signed-in user makes themselves an API token, as in
//! CKAN 2.9+. In renkei a token is an API key acting in one tenant with one
//! role, so the token takes the user's role in the organisation named by
//! `organization` (renkei's parameter; needed only when the user holds roles in
//! several). The token is shown once and stored hashed.

use chrono::Utc;
use identity::principal::Principal;
use identity::role::{Role, Scope};
use identity::secret::ApiKeyRecord;
use serde_json::{json, Value};

use super::{ActionResult, CallerAccess, CkanError, Params};
use crate::AppState;

pub async fn api_token_create(
    state: &AppState,
    params: &Params,
    access: &CallerAccess,
) -> ActionResult {
    let Principal::User {
        user_id,
        username,
        grants,
    } = &access.principal
    else {
        return Err(CkanError::NotAuthorized(
            "Sign in as a user to create an API token / APIトークンの作成にはサインインが必要です"
                .into(),
        ));
    };
    let user = params.required("user")?;
    if user != username && user != user_id {
        return Err(CkanError::NotAuthorized(format!(
            "User {username} not authorized to create tokens for {user}"
        )));
    }
    let name = params.required("name")?;
    let candidates: Vec<_> = grants
        .iter()
        .filter(|g| g.role != Role::PlatformAdmin && g.tenant.is_some())
        .filter(|g| {
            params
                .str("organization")
                .is_none_or(|o| g.tenant.as_deref() == Some(o))
        })
        .collect();
    let grant =
        match candidates.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(CkanError::field(
                    "organization",
                    "The user holds no role in that organization / その組織でのロールがありません",
                ))
            }
            _ => return Err(CkanError::field(
                "organization",
                "The user holds roles in several organizations: name one / 組織を指定してください",
            )),
        };
    let expires_at = match params.usize("expires_in")? {
        None => None,
        Some(n) => {
            let unit = params.usize("unit")?.unwrap_or(86_400);
            Some(Utc::now() + chrono::Duration::seconds((n * unit) as i64))
        }
    };
    let now = Utc::now();
    let (record, token) = ApiKeyRecord::generate(
        grant.clone(),
        Scope::defaults_for(grant.role),
        name,
        access.principal.actor(),
        expires_at,
        now,
    );
    state
        .identity
        .store()
        .create_api_key(&record)
        .await
        .map_err(super::actions::internal)?;
    state
        .identity
        .audit(
            &access.principal.actor(),
            grant.tenant.as_deref(),
            "key.create",
            &format!("key:{}", record.id),
            json!({"via": "api_token_create", "role": grant.role, "expiresAt": expires_at}),
        )
        .await?;
    Ok(Value::Object(
        [("token".to_owned(), Value::String(token))]
            .into_iter()
            .collect(),
    ))
}

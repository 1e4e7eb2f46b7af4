//! The administrative commands of the `renkei` binary (`tenant`, `admin`, `key`,
//! `audit`, `encryption-key`): each opens the configured database and calls the same
//! operations as the `/admin/v1` API, acting as the operator at the console, so the
//! policy and the audit log see them alike. Results go to standard output (a new API
//! key alone, so scripts can capture it); messages go to standard error.

use crate::admin::ops::{self, KeyRequest, TenantChange};
use crate::auth::Identity;
use crate::config::Config;
use crate::storage::Backend;
use anyhow::{bail, Context as _};
use identity::{Principal, Role, Scope};
use std::io::BufRead;

/// Identity and access over the configured database, for one command.
async fn open_identity(config: &Config) -> anyhow::Result<Identity> {
    let stores = Backend::from_url(&config.database_url)?.open().await?;
    Ok(Identity::new(stores.identity, config, None))
}

fn refused(err: crate::auth::AuthError) -> anyhow::Error {
    anyhow::anyhow!("{err}")
}

pub async fn tenant_add(
    config: &Config,
    code: &str,
    public_types: &[String],
) -> anyhow::Result<()> {
    let identity = open_identity(config).await?;
    let record = ops::create_tenant(&identity, &Principal::Operator, code)
        .await
        .map_err(refused)?;
    if !public_types.is_empty() {
        let change = TenantChange {
            public_types: Some(public_types.to_vec()),
            ..Default::default()
        };
        ops::update_tenant(&identity, &Principal::Operator, code, change)
            .await
            .map_err(refused)?;
    }
    eprintln!("tenant {} ({}) registered", record.code, record.name);
    Ok(())
}

pub async fn tenant_set_suspended(
    config: &Config,
    code: &str,
    suspended: bool,
) -> anyhow::Result<()> {
    let identity = open_identity(config).await?;
    let change = TenantChange {
        suspended: Some(suspended),
        ..Default::default()
    };
    ops::update_tenant(&identity, &Principal::Operator, code, change)
        .await
        .map_err(refused)?;
    eprintln!(
        "tenant {code} {}",
        if suspended { "suspended" } else { "resumed" }
    );
    Ok(())
}

pub async fn tenant_list(config: &Config) -> anyhow::Result<()> {
    let identity = open_identity(config).await?;
    for tenant in identity.store().list_registered_tenants().await? {
        let state = if tenant.suspended {
            "suspended"
        } else {
            "active"
        };
        println!("{}\t{}\t{state}", tenant.code, tenant.name);
    }
    Ok(())
}

/// Reads a password: twice without echo on a terminal, one line from a pipe.
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password / パスワード: ")?;
        let second = rpassword::prompt_password("again / 再入力: ")?;
        if first != second {
            bail!("the passwords differ / パスワードが一致しません");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

pub async fn admin_create(
    config: &Config,
    username: &str,
    display_name: Option<&str>,
) -> anyhow::Result<()> {
    let identity = open_identity(config).await?;
    let password = read_password()?;
    let user = ops::create_platform_admin(
        &identity,
        username,
        display_name.unwrap_or(username),
        &password,
    )
    .await
    .map_err(refused)?;
    eprintln!("platform administrator {} created", user.username);
    Ok(())
}

pub async fn key_create(
    config: &Config,
    tenant: &str,
    role: Role,
    scopes: Option<Vec<Scope>>,
    label: &str,
    expires_in_days: Option<u32>,
) -> anyhow::Result<()> {
    let identity = open_identity(config).await?;
    let request = KeyRequest {
        tenant: tenant.to_owned(),
        role,
        scopes,
        label: label.to_owned(),
        expires_in_days,
    };
    let (record, token) = ops::create_key(&identity, &Principal::Operator, request)
        .await
        .map_err(refused)?;
    eprintln!(
        "API key {} for tenant {tenant} ({role}) created; it is shown only now",
        record.id
    );
    println!("{token}");
    Ok(())
}

pub async fn key_revoke(config: &Config, id: &str) -> anyhow::Result<()> {
    let identity = open_identity(config).await?;
    ops::revoke_key(&identity, &Principal::Operator, None, id)
        .await
        .map_err(refused)?;
    eprintln!("API key {id} revoked");
    Ok(())
}

/// Verifies the audit chain; an error (exit status 1) when it is broken.
pub async fn audit_verify(config: &Config) -> anyhow::Result<()> {
    let identity = open_identity(config).await?;
    let report = ops::verify_audit(identity.store().as_ref())
        .await
        .map_err(refused)?;
    if report.intact {
        println!(
            "audit log intact: {} records, head {}",
            report.records, report.head
        );
        Ok(())
    } else {
        bail!(
            "audit log BROKEN after {} intact records: {}",
            report.records,
            report.problem.unwrap_or_default()
        )
    }
}

pub fn encryption_key_generate(id: &str) -> anyhow::Result<()> {
    println!("{}", field_crypto::Keyring::generate_key_entry(id)?);
    Ok(())
}

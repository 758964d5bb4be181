//! Which role each registry route needs when authentication is on: reads need `read`, registrations
//! and deletes `write`, configuration and mode changes `admin`.

use plinth_runtime::auth::{AccessPolicy, DefaultAccessPolicy, Role};

/// The registry's access policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistryAccessPolicy;

const ADMIN_RPCS: [&str; 4] = ["/SetConfig", "/DeleteConfig", "/SetMode", "/DeleteMode"];

impl AccessPolicy for RegistryAccessPolicy {
    fn required_role(&self, method: &http::Method, path: &str) -> Option<Role> {
        let base = DefaultAccessPolicy.required_role(method, path)?;
        if path.starts_with("/plinth.schemaregistry.v1.") {
            if ADMIN_RPCS.iter().any(|rpc| path.ends_with(rpc)) {
                return Some(Role::Admin);
            }
            return Some(base);
        }
        // REST: compatibility checks, lookups and validation are POSTs that change nothing.
        if *method == http::Method::POST
            && (path.starts_with("/compatibility/")
                || path.ends_with("/validate")
                || is_lookup(path))
        {
            return Some(Role::Read);
        }
        if (path == "/config"
            || path.starts_with("/config/")
            || path == "/mode"
            || path.starts_with("/mode/"))
            && *method != http::Method::GET
        {
            return Some(Role::Admin);
        }
        Some(base)
    }
}

/// `POST /subjects/{subject}` (lookup), as opposed to `POST /subjects/{subject}/versions` (register).
fn is_lookup(path: &str) -> bool {
    path.strip_prefix("/subjects/")
        .is_some_and(|rest| !rest.contains('/'))
}

//! Which role a request needs.

use http::Method;

use super::Role;

/// Decides the role a request needs from its method and path; `None` means the request is public.
pub trait AccessPolicy: Send + Sync + 'static {
    /// The role required for `method path`, or `None` for public requests.
    fn required_role(&self, method: &Method, path: &str) -> Option<Role>;
}

/// The policy every service starts with:
///
/// - public: `/grpc.health.v1.Health/*`, `/grpc.reflection.*`, `/metrics`, `/healthz`, `/readyz`;
/// - gRPC paths `/<package>.<Service>/<Method>`: methods starting with `Get`, `List`, `Lookup`,
///   `Check`, `Validate`, `Describe`, `Watch`, `Subscribe`, `Server` or `Model` need
///   [`Role::Read`], every other method [`Role::Write`];
/// - other HTTP paths: `GET` and `HEAD` need [`Role::Read`], other methods [`Role::Write`].
///
/// Services that have admin-only calls wrap it in their own policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultAccessPolicy;

/// Prefixes of gRPC method names that only read.
const READ_METHOD_PREFIXES: [&str; 10] = [
    "Get",
    "List",
    "Lookup",
    "Check",
    "Validate",
    "Describe",
    "Watch",
    "Subscribe",
    "Server",
    "Model",
];

/// Paths that never need a token.
const PUBLIC_PATHS: [&str; 3] = ["/metrics", "/healthz", "/readyz"];

impl AccessPolicy for DefaultAccessPolicy {
    fn required_role(&self, method: &Method, path: &str) -> Option<Role> {
        if path.starts_with("/grpc.health.v1.Health/")
            || path.starts_with("/grpc.reflection.")
            || PUBLIC_PATHS.contains(&path)
        {
            return None;
        }
        if let Some(rpc_method) = grpc_method_name(path) {
            let reads = READ_METHOD_PREFIXES
                .iter()
                .any(|prefix| rpc_method.starts_with(prefix));
            return Some(if reads { Role::Read } else { Role::Write });
        }
        if method == Method::GET || method == Method::HEAD {
            Some(Role::Read)
        } else {
            Some(Role::Write)
        }
    }
}

/// The method of a gRPC path `/<package>.<Service>/<Method>`, or `None` for other paths.
fn grpc_method_name(path: &str) -> Option<&str> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let is_grpc = service.contains('.')
        && !method.is_empty()
        && !method.contains('/')
        && method.starts_with(|c: char| c.is_ascii_uppercase());
    is_grpc.then_some(method)
}

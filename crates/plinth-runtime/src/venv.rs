//! Where the Python venv of the developer tools is (`make tools` builds it): the ONNX Runtime library
//! of model serving and the Python that runs `plinth up --demo`'s training script come from it.

use std::path::PathBuf;

/// The candidate venv directories, in order: `$PLINTH_VENV`, `$PLINTH_TOOLS_DIR/venv`, then
/// `${XDG_CACHE_HOME:-~/.cache}/plinth/tools/venv` (the Makefile's default). They may not exist.
pub fn tools_venvs() -> Vec<PathBuf> {
    let mut venvs: Vec<PathBuf> = Vec::new();
    if let Some(venv) = std::env::var_os("PLINTH_VENV").filter(|path| !path.is_empty()) {
        venvs.push(PathBuf::from(venv));
    }
    if let Some(tools) = std::env::var_os("PLINTH_TOOLS_DIR").filter(|path| !path.is_empty()) {
        venvs.push(PathBuf::from(tools).join("venv"));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    if let Some(cache) = cache {
        venvs.push(cache.join("plinth/tools/venv"));
    }
    venvs
}

/// The Python of the first tools venv that has one, if any.
pub fn tools_python() -> Option<PathBuf> {
    tools_venvs()
        .into_iter()
        .map(|venv| venv.join("bin/python"))
        .find(|python| python.is_file())
}

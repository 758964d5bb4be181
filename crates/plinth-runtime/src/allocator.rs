//! The memory allocator every Plinth binary uses, chosen once here.
//!
//! Under concurrent load glibc's malloc serializes the tokio workers on its arena locks (the registry
//! benchmark measured about 12 % of CPU in those locks, and a p99 above 1 ms because of them); mimalloc
//! keeps per-thread heaps.
//!
//! Built with `no_thp`: mimalloc then turns transparent huge pages off for the process (Linux
//! `PR_SET_THP_DISABLE`). With them on (the kernel's usual `madvise` setting), every fresh 2 MiB of a
//! big buffer is zeroed, and often compacted for, in the page fault that first touches it: the feature
//! store's training set (1 M Parquet rows decoded, joined and encoded) spent over half its CPU in
//! those faults and ran 0.14 to 0.32 s; without them 0.10 to 0.15 s (`docs/benchmarks.md`). Redis and
//! MongoDB recommend the same for their servers.
//!
//! Each binary declares it in its `main.rs`:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;
//! ```

/// The allocator for `#[global_allocator]` (a unit struct: the type and its value share the name).
pub use mimalloc::MiMalloc as Allocator;

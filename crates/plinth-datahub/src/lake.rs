//! Lake sinks and datasets (in progress).

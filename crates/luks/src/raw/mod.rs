//! Raw on-disk structures, each with `parse` and `write_to` side by side.

mod binary_header;

pub use binary_header::{
    BINARY_HEADER_SIZE, BinaryHeader, HeaderKind, MAGIC_PRIMARY, MAGIC_SECONDARY,
};

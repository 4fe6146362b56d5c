//! A byte range of a larger stream, seen as a stream of its own (a partition inside a disk):
//! the shared [`imgpipe_fstree::Window`].

pub use imgpipe_fstree::Window;

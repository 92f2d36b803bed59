//! Typed calls of BlobService listings: ListBlobs, ListAllBlobs (reassembled per blob) and the LFS pointer RPCs.

use super::Client;

impl Client {}

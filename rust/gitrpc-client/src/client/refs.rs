//! Typed calls of RefService reads: branch and tag names containing a commit, FindRefsByOID, tag messages and
//! signatures, FindAllRemoteBranches.

use super::Client;

impl Client {}

//! Typed calls of RepositoryService reads: GetArchive (chunks as they come, never collected), file search by
//! name and content, GetRawChanges, RepositoryInfo, GetFileAttributes, FindLicense.

use super::Client;

impl Client {}

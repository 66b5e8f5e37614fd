//! An in-memory store for tests. Not for production persistence: nothing survives the process.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::{Backend, Persistence};
use crate::Result;
use crate::sync::lock;

/// Bytes in memory.
#[derive(Debug, Default)]
pub struct Memory {
    bytes: Mutex<Option<Zeroizing<Vec<u8>>>>,
}

impl Persistence for Memory {
    fn backend(&self) -> Backend {
        Backend::Memory
    }

    fn location(&self) -> &Path {
        Path::new("(memory)")
    }

    fn load(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(lock(&self.bytes).clone())
    }

    fn save(&self, bytes: Zeroizing<Vec<u8>>) -> Result<()> {
        *lock(&self.bytes) = Some(bytes);
        Ok(())
    }

    fn move_aside(&self, _why: &str) -> Result<Option<PathBuf>> {
        Ok(lock(&self.bytes).take().map(|_| PathBuf::from("(memory)")))
    }
}

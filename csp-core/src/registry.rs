//! The registry of processes that can run in another OS process.
//!
//! A child OS process is this same executable started again; it finds the process it must
//! run by its stable name (module path and function name) in this registry, and checks the
//! fingerprint of its argument and result types, never an address. `#[process]` registers
//! every non-generic process; registration happens before `main` (through the `inventory`
//! crate), and [`check`] verifies at start-up that it did happen, because registries built on
//! life-before-main have silently lost entries in other projects.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::RunError;

/// A process that a child OS process can run.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration {
    /// Module path and function name.
    pub name: &'static str,
    /// The fingerprint of `(argument types) -> result type`.
    pub fingerprint: u64,
    /// Decodes the arguments, runs the process, encodes its result.
    pub run: fn(&[u8]) -> Result<Vec<u8>, crate::RunError>,
}

inventory::collect!(Registration);

/// The entry `csp-core` registers itself: its presence proves registration works.
pub(crate) const SENTINEL: &str = "csp::registry::sentinel";

inventory::submit! {
    Registration {
        name: SENTINEL,
        fingerprint: fingerprint("() -> ()"),
        run: |_| Ok(postcard::to_stdvec(&()).expect("() encodes")),
    }
}

/// FNV-1a over the text of a signature: stable for one build of the program.
#[doc(hidden)]
pub const fn fingerprint(signature: &str) -> u64 {
    let bytes = signature.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

fn table() -> &'static HashMap<&'static str, &'static Registration> {
    static TABLE: OnceLock<HashMap<&'static str, &'static Registration>> = OnceLock::new();
    TABLE.get_or_init(|| {
        inventory::iter::<Registration>
            .into_iter()
            .map(|entry| (entry.name, entry))
            .collect()
    })
}

/// The registered process with this name.
pub(crate) fn lookup(name: &str) -> Option<&'static Registration> {
    table().get(name).copied()
}

/// How many processes are registered (the sentinel included).
pub(crate) fn len() -> usize {
    table().len()
}

/// Why the registry cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Registration before `main` did not run, so no process could be found in a child.
    #[error(
        "the process registry is empty: registration before main did not run on this \
         platform or build (static linking with --gc-sections can drop it); processes cannot \
         be placed in other OS processes"
    )]
    NotRegistered,
    /// Two processes share one name.
    #[error("two processes are registered as {0}")]
    Duplicate(String),
}

/// Checks that registration ran and that names are unique.
///
/// # Errors
///
/// [`RegistryError`] saying what is wrong.
pub fn check() -> Result<(), RegistryError> {
    if lookup(SENTINEL).is_none() {
        return Err(RegistryError::NotRegistered);
    }
    let entries = inventory::iter::<Registration>.into_iter().count();
    if entries != len() {
        let mut seen = std::collections::HashSet::new();
        for entry in inventory::iter::<Registration> {
            if !seen.insert(entry.name) {
                return Err(RegistryError::Duplicate(entry.name.to_string()));
            }
        }
    }
    Ok(())
}

/// Macro support: encodes a process's arguments if their types can be serialized.
#[doc(hidden)]
pub struct Encode<'a, A>(pub &'a A);

#[doc(hidden)]
pub trait EncodeSerde {
    fn encode(&self) -> Result<Vec<u8>, String>;
}

impl<A: serde::Serialize> EncodeSerde for Encode<'_, A> {
    fn encode(&self) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(self.0).map_err(|error| {
            format!(
                "cannot encode the arguments: {}",
                crate::transfer::explain(&error)
            )
        })
    }
}

#[doc(hidden)]
pub trait EncodeNone {
    fn encode(&self) -> Result<Vec<u8>, String>;
}

impl<A> EncodeNone for &Encode<'_, A> {
    fn encode(&self) -> Result<Vec<u8>, String> {
        Err(format!(
            "its arguments `{}` do not all implement serde's Serialize and Deserialize",
            std::any::type_name::<A>()
        ))
    }
}

/// Macro support: runs a registered process in a child from encoded arguments.
#[doc(hidden)]
pub struct Decode<A, R>(pub std::marker::PhantomData<fn(A) -> R>);

#[doc(hidden)]
pub trait DecodeSerde<A, R> {
    fn run_encoded(
        &self,
        bytes: &[u8],
        make: fn(A) -> crate::Process<R>,
    ) -> Result<Vec<u8>, RunError>;
}

impl<A: serde::de::DeserializeOwned, R: serde::Serialize + Send + 'static> DecodeSerde<A, R>
    for Decode<A, R>
{
    fn run_encoded(
        &self,
        bytes: &[u8],
        make: fn(A) -> crate::Process<R>,
    ) -> Result<Vec<u8>, RunError> {
        let process = |reason: String| RunError::Placement {
            process: std::any::type_name::<fn(A) -> R>().to_string(),
            reason,
        };
        let args: A = postcard::from_bytes(bytes).map_err(|error| {
            process(format!(
                "cannot decode the arguments: {}",
                crate::transfer::explain(&error)
            ))
        })?;
        let result = crate::placement::as_shown(make(args)).run()?;
        postcard::to_stdvec(&result).map_err(|error| {
            process(format!(
                "cannot encode the result: {}",
                crate::transfer::explain(&error)
            ))
        })
    }
}

#[doc(hidden)]
pub trait DecodeNone<A, R> {
    fn run_encoded(
        &self,
        bytes: &[u8],
        make: fn(A) -> crate::Process<R>,
    ) -> Result<Vec<u8>, RunError>;
}

impl<A, R> DecodeNone<A, R> for &Decode<A, R> {
    fn run_encoded(&self, _: &[u8], _: fn(A) -> crate::Process<R>) -> Result<Vec<u8>, RunError> {
        Err(RunError::Placement {
            process: std::any::type_name::<fn(A) -> R>().to_string(),
            reason: "its argument or result types cannot be serialized".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentinel_is_registered_and_the_registry_checks_out() {
        check().unwrap();
        assert!(lookup(SENTINEL).is_some());
        assert!(lookup("no::such::process").is_none());
    }

    #[test]
    fn fingerprints_tell_signatures_apart() {
        assert_eq!(fingerprint("(u8) -> ()"), fingerprint("(u8) -> ()"));
        assert_ne!(fingerprint("(u8) -> ()"), fingerprint("(u16) -> ()"));
    }
}

//! Setting a shared-memory stream up: [`offer`] on the connecting side, [`accept`] on the
//! other.

#![allow(unsafe_code)]

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use super::{Mapping, REGION, SharedStream};

/// How long setting up may wait for the peer.
const SETUP_LIMIT: Duration = Duration::from_secs(5);

const ASK: u8 = b'?';
const ACCEPTED: u8 = b'+';

fn with_setup_limit<T>(socket: &UnixStream, step: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    socket.set_read_timeout(Some(SETUP_LIMIT))?;
    let result = step();
    socket.set_read_timeout(None)?;
    result
}

/// Sends the memory's descriptor over `socket`, with one byte (`SCM_RIGHTS`).
fn send_memory(socket: &UnixStream, memory: &OwnedFd) -> io::Result<()> {
    let fds = [memory.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(&[1])],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

fn read_byte(socket: &mut UnixStream) -> io::Result<u8> {
    let mut byte = [0u8];
    socket.read_exact(&mut byte)?;
    Ok(byte[0])
}

/// Offers a new shared-memory stream over `socket` (the connecting side). The acceptor must
/// call [`accept`] and nothing may be buffered on either side of the socket.
///
/// # Errors
///
/// If the memory cannot be made, or the peer does not ask for it or refuses it, within the
/// set-up limit; the socket is then in an unknown state and should be dropped.
pub(crate) fn offer(mut socket: UnixStream) -> io::Result<SharedStream> {
    with_setup_limit(&socket.try_clone()?, || {
        if read_byte(&mut socket)? != ASK {
            return Err(io::Error::other("the peer did not ask for shared memory"));
        }
        let memory = memfd_create(
            c"csp-stream",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        nix::unistd::ftruncate(&memory, REGION as i64)?;
        fcntl(
            &memory,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL,
            ),
        )?;
        let mapping = Mapping::map(&memory)?;
        send_memory(&socket, &memory)?;
        if read_byte(&mut socket)? != ACCEPTED {
            return Err(io::Error::other("the peer refused the shared memory"));
        }
        Ok(SharedStream {
            memory: mapping,
            side: 0,
            socket,
            last_value: 0,
            message: Vec::new(),
            #[cfg(test)]
            spills: 0,
        })
    })
}

/// Accepts a shared-memory stream offered over `socket` (see [`offer`]).
///
/// # Errors
///
/// If no memory arrives within the set-up limit, or what arrives is not a sealed region of
/// the expected size.
pub(crate) fn accept(mut socket: UnixStream) -> io::Result<SharedStream> {
    with_setup_limit(&socket.try_clone()?, || {
        socket.write_all(&[ASK])?;
        let mut byte = [0u8];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let received = {
            let mut buffers = [IoSliceMut::new(&mut byte)];
            let message = recvmsg::<()>(
                socket.as_raw_fd(),
                &mut buffers,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )?;
            let mut fds = Vec::new();
            for control in message.cmsgs()? {
                if let ControlMessageOwned::ScmRights(received) = control {
                    fds.extend(received);
                }
            }
            fds
        };
        // SAFETY: the kernel just gave us these descriptors; nothing else owns them.
        let mut owned: Vec<OwnedFd> = received
            .into_iter()
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .collect();
        let memory = match (owned.pop(), owned.is_empty()) {
            (Some(memory), true) => memory,
            _ => return Err(io::Error::other("expected exactly one memory descriptor")),
        };
        let size = nix::sys::stat::fstat(&memory)?.st_size;
        let seals = fcntl(&memory, FcntlArg::F_GET_SEALS)?;
        let sealed = SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_SHRINK);
        if size != REGION as i64 || !sealed {
            return Err(io::Error::other(
                "the offered memory is not a sealed region of the expected size",
            ));
        }
        let mapping = Mapping::map(&memory)?;
        socket.write_all(&[ACCEPTED])?;
        Ok(SharedStream {
            memory: mapping,
            side: 1,
            socket,
            last_value: 0,
            message: Vec::new(),
            #[cfg(test)]
            spills: 0,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn memory_that_is_not_sealed_is_refused() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let accepting = thread::spawn(move || accept(b));
        assert_eq!(read_byte(&mut a).unwrap(), ASK);
        let memory = memfd_create(c"unsealed", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&memory, REGION as i64).unwrap();
        send_memory(&a, &memory).unwrap();
        let error = accepting.join().unwrap().unwrap_err();
        assert!(error.to_string().contains("sealed"), "{error}");
    }

    #[test]
    fn an_acceptor_that_gets_no_memory_gives_up() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(a);
        assert!(accept(b).is_err());
    }
}

//! A netfilter queue (NFQUEUE) over a raw netlink socket: bind a queue
//! number of the current network namespace, read the IDs of the packets
//! the kernel queues to it, and give each its verdict (accept or drop), in
//! any order. Only packet metadata is copied; the packets are not changed.
//!
//! The messages are built and parsed by plain functions over byte
//! buffers (tested without a kernel); the socket calls are the rest.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NETLINK_NETFILTER: i32 = 12;
const NLMSG_HDRLEN: usize = 16;
const NFGEN_HDRLEN: usize = 4;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
/// The queue subsystem of nfnetlink, in the high byte of a message type.
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
/// When the queue is full, accept instead of dropping (no loss we did not choose).
const NFQA_CFG_F_FAIL_OPEN: u32 = 1;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One nfnetlink message of the queue subsystem: header, nfgenmsg, attributes.
fn message(kind: u16, flags: u16, seq: u32, queue: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0u8; NLMSG_HDRLEN];
    m.extend_from_slice(&[0, 0]); // AF_UNSPEC, NFNETLINK_V0
    m.extend_from_slice(&queue.to_be_bytes());
    for (ty, data) in attrs {
        let len = 4 + data.len();
        m.extend_from_slice(&(len as u16).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(data);
        m.resize(align4(m.len()), 0);
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | kind).to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// The verdict message for a packet.
fn verdict_message(queue: u16, id: u32, accept: bool) -> Vec<u8> {
    let mut hdr = Vec::with_capacity(8);
    hdr.extend_from_slice(&(if accept { NF_ACCEPT } else { NF_DROP }).to_be_bytes());
    hdr.extend_from_slice(&id.to_be_bytes());
    message(NFQNL_MSG_VERDICT, NLM_F_REQUEST, 0, queue, &[(NFQA_VERDICT_HDR, &hdr)])
}

/// What one netlink message of a received buffer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Incoming {
    /// A queued packet, by ID.
    Packet(u32),
    /// The answer to request `seq`: 0, or a negative errno.
    Ack { seq: u32, error: i32 },
    /// Anything else.
    Other,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Splits a received buffer into its messages (a torn tail is ignored).
fn parse(buf: &[u8]) -> Vec<Incoming> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at) as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            break;
        }
        let m = &buf[at..at + len];
        let ty = u16_at(m, 4);
        out.push(if ty == NLMSG_ERROR && len >= NLMSG_HDRLEN + 4 + NLMSG_HDRLEN {
            // nlmsgerr: the error, then the request's header (its seq at 8).
            let error = i32::from_ne_bytes(m[16..20].try_into().expect("4 bytes"));
            Incoming::Ack { seq: u32_at(m, 20 + 8), error }
        } else if ty == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
            packet_id(&m[NLMSG_HDRLEN + NFGEN_HDRLEN..]).map_or(Incoming::Other, Incoming::Packet)
        } else {
            Incoming::Other
        });
        at += align4(len);
    }
    out
}

/// The packet ID in the attributes of a packet message.
fn packet_id(mut attrs: &[u8]) -> Option<u32> {
    while attrs.len() >= 4 {
        let len = u16_at(attrs, 0) as usize;
        let ty = u16_at(attrs, 2) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if ty == NFQA_PACKET_HDR && len >= 8 {
            return Some(u32::from_be_bytes(attrs[4..8].try_into().expect("4 bytes")));
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    None
}

/// A bound queue.
#[derive(Debug)]
pub struct NfQueue {
    fd: OwnedFd,
    queue: u16,
    seq: u32,
    buf: Vec<u8>,
    /// Packet IDs read while waiting for an acknowledgement.
    early: Vec<u32>,
}

fn check(r: libc::c_int, what: &str) -> io::Result<()> {
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

impl NfQueue {
    /// Binds queue `queue` of this network namespace: packet metadata only,
    /// up to `max_len` packets waiting, accepted when more come.
    ///
    /// # Errors
    /// When the socket cannot be made or the kernel refuses (no NFQUEUE
    /// support; the number is taken by another process).
    pub fn bind(queue: u16, max_len: u32) -> io::Result<NfQueue> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd =
            unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_NETFILTER) };
        check(fd, "netlink socket")?;
        // SAFETY: fd is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; zeroed is its unbound value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: addr lives across the call and its size is given.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        check(r, "netlink bind")?;
        let one: libc::c_int = 1;
        let rcvbuf: libc::c_int = 8 << 20;
        for (level, opt, val) in [
            (libc::SOL_NETLINK, libc::NETLINK_NO_ENOBUFS, one),
            (libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcvbuf),
        ] {
            // SAFETY: val lives across the call and its size is given.
            let r = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    level,
                    opt,
                    (&val as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as u32,
                )
            };
            check(r, "netlink setsockopt")?;
        }
        let mut q = NfQueue { fd, queue, seq: 0, buf: vec![0; 1 << 16], early: Vec::new() };
        q.config(&[(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0])])?;
        let mut params = 0xffffu32.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_META);
        q.config(&[(NFQA_CFG_PARAMS, &params)])?;
        q.config(&[(NFQA_CFG_QUEUE_MAXLEN, &max_len.to_be_bytes())])?;
        let flags = NFQA_CFG_F_FAIL_OPEN.to_be_bytes();
        q.config(&[(NFQA_CFG_FLAGS, &flags), (NFQA_CFG_MASK, &flags)])?;
        Ok(q)
    }

    /// The socket, to poll.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn send(&self, m: &[u8]) -> io::Result<()> {
        // SAFETY: m lives across the call; the kernel is the destination
        // (a connected-less netlink socket sends to pid 0 by default).
        let r = unsafe { libc::send(self.fd.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) };
        check(r as libc::c_int, "netlink send")
    }

    /// Sends a configuration request and waits for its acknowledgement.
    fn config(&mut self, attrs: &[(u16, &[u8])]) -> io::Result<()> {
        self.seq += 1;
        let seq = self.seq;
        self.send(&message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, self.queue, attrs))?;
        loop {
            // SAFETY: the buffer is ours and its length is given.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
            check(n as libc::c_int, "netlink recv")?;
            for m in parse(&self.buf[..n as usize]) {
                match m {
                    Incoming::Ack { seq: s, error } if s == seq => {
                        return if error == 0 {
                            Ok(())
                        } else {
                            let e = io::Error::from_raw_os_error(-error);
                            Err(io::Error::new(e.kind(), format!("binding NFQUEUE {}: {e}", self.queue)))
                        };
                    }
                    Incoming::Packet(id) => self.early.push(id),
                    _ => {}
                }
            }
        }
    }

    /// Reads the IDs of every packet waiting now (never blocks). Answers to
    /// verdicts (only errors come back) are skipped.
    ///
    /// # Errors
    /// When the socket fails.
    pub fn read_ready(&mut self, out: &mut Vec<u32>) -> io::Result<()> {
        out.append(&mut self.early);
        loop {
            // SAFETY: the buffer is ours and its length is given.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(()),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(e),
                };
            }
            for m in parse(&self.buf[..n as usize]) {
                if let Incoming::Packet(id) = m {
                    out.push(id);
                }
            }
        }
    }

    /// Lets a packet go on (`accept`) or drops it.
    ///
    /// # Errors
    /// When the socket fails.
    pub fn verdict(&self, id: u32, accept: bool) -> io::Result<()> {
        self.send(&verdict_message(self.queue, id, accept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet message as the kernel sends it (header attribute only).
    fn packet(queue: u16, id: u32) -> Vec<u8> {
        let mut hdr = id.to_be_bytes().to_vec();
        hdr.extend_from_slice(&[0x08, 0x00, 3]); // ETH_P_IP, hook
        let mark = 0u32.to_be_bytes();
        message(NFQNL_MSG_PACKET, 0, 0, queue, &[(6, &mark), (NFQA_PACKET_HDR, &hdr)])
    }

    fn ack(seq: u32, error: i32) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDRLEN];
        m.extend_from_slice(&error.to_ne_bytes());
        m.extend_from_slice(
            &message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, 0, &[])[..NLMSG_HDRLEN],
        );
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m
    }

    #[test]
    fn messages_are_framed_and_aligned() {
        let m = message(
            NFQNL_MSG_CONFIG,
            NLM_F_REQUEST | NLM_F_ACK,
            9,
            3,
            &[(NFQA_CFG_PARAMS, &[0, 0, 255, 255, 1])],
        );
        assert_eq!(m.len(), NLMSG_HDRLEN + NFGEN_HDRLEN + 12, "a 9-byte attribute is padded to 12");
        assert_eq!(u32_at(&m, 0) as usize, m.len());
        assert_eq!(u16_at(&m, 4), 0x0302);
        assert_eq!(u16_at(&m, 6), 5);
        assert_eq!(u32_at(&m, 8), 9);
        assert_eq!(&m[18..20], &[0, 3], "queue number, big-endian");
        assert_eq!(u16_at(&m, 20), 9, "attribute length without padding");
        let v = verdict_message(3, 0x0102_0304, true);
        assert_eq!(&v[24..32], &[0, 0, 0, 1, 1, 2, 3, 4]);
    }

    #[test]
    fn packets_and_acks_are_read_from_one_buffer() {
        let mut buf = packet(0, 41);
        buf.extend(ack(7, -16));
        buf.extend(packet(0, 42));
        buf.extend_from_slice(&[1, 2, 3]); // torn
        assert_eq!(
            parse(&buf),
            vec![Incoming::Packet(41), Incoming::Ack { seq: 7, error: -16 }, Incoming::Packet(42)]
        );
    }
}

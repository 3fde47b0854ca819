//! A TCP proxy on one directed peer link, which the chaos test can cut and heal.
//!
//! Node `i` dials node `j` through the proxy of link `i → j`, so that connection carries only
//! what `i` says to `j`; cutting it (and not `j → i`) is a one-way partition. A cut closes the
//! connections open across the link and refuses new ones until the link is healed. The proxy
//! copies bytes and understands nothing, so it works the same over TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The control side of one proxied link.
#[derive(Clone, Debug)]
pub struct Link {
    cut: Arc<watch::Sender<bool>>,
}

impl Link {
    /// Cuts (`true`) or heals (`false`) the link.
    pub fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }
}

/// Starts proxying `listener` to `target`; runs on the current tokio runtime until it stops.
pub fn start(listener: TcpListener, target: SocketAddr) -> Link {
    let (cut, watcher) = watch::channel(false);
    tokio::spawn(accept_loop(listener, target, watcher));
    Link { cut: Arc::new(cut) }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, cut: watch::Receiver<bool>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        if *cut.borrow() {
            continue; // dropped: the dialler sees the connection close
        }
        tokio::spawn(forward(inbound, target, cut.clone()));
    }
}

async fn forward(mut inbound: TcpStream, target: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = cut.wait_for(|&cut| cut) => {}
    }
}

//! A picture of a network: any composition rendered as Graphviz DOT.
//!
//! [`Process::picture`](crate::Process::picture) takes the shape of a process or
//! composition before it runs: every process as a node (its name and where it runs: thread,
//! task or OS process), compositions as boxes around their parts, and every channel as an
//! edge from the processes holding its writing ends to those holding its reading ends
//! (named, with its buffer). The picture keeps hold of the channels, so rendering it again
//! while the network runs, or after, shows how many messages each has passed and whether it
//! was poisoned or retired. A channel whose other side is held outside the picture (by the
//! thread that composed it, say) is drawn to or from an "outside" node.
//!
//! # Examples
//!
//! ```
//! use csp_core::{Channel, Parallel, Process};
//!
//! let channel = Channel::<u32>::named("numbers");
//! let (writer, reader) = (channel.writer(), channel.reader());
//! let producer = Process::new("producer", move || writer.write(1).is_ok()).with_ends(&channel.writer());
//! let consumer = Process::new("consumer", move || reader.read().ok()).with_ends(&channel.reader());
//! let network = Parallel::tuple((producer, consumer));
//! let picture = network.picture();
//! network.run().unwrap();
//! let dot = picture.to_dot();
//! assert!(dot.contains("\"producer\\n(thread)\""));
//! assert!(dot.contains("label=\"numbers\\n1 message\\nretired\""), "{dot}");
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::channel::ChannelControl;
use crate::channel::core::Side;
use crate::propagation::EndSet;

/// Where a process runs, as a picture shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    Thread,
    Task,
    OsProcess,
}

/// The shape of a process: one process, or a composition of parts.
#[derive(Clone)]
pub(crate) enum Shape {
    Process {
        name: String,
        placement: Placement,
        ends: EndSet,
    },
    Composition {
        kind: &'static str,
        parts: Vec<Shape>,
    },
}

/// A network's picture; see the [module documentation](self).
#[derive(Clone)]
pub struct Picture {
    shape: Shape,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_dot())
    }
}

fn short(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One channel as the picture sees it.
struct Edge {
    control: Arc<dyn ChannelControl>,
    writers: Vec<usize>,
    readers: Vec<usize>,
}

impl Picture {
    pub(crate) fn new(shape: Shape) -> Picture {
        Picture { shape }
    }

    /// The picture as a Graphviz DOT graph (render it with `dot -Tpng`).
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph network {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
        );
        let mut leaves: Vec<&EndSet> = Vec::new();
        let mut clusters = 0;
        draw(&self.shape, 1, &mut out, &mut leaves, &mut clusters);
        // Channels in order of first appearance; identity is the channel itself, not its name.
        let mut edges: Vec<Edge> = Vec::new();
        let mut index: BTreeMap<usize, usize> = BTreeMap::new();
        for (leaf, ends) in leaves.iter().enumerate() {
            for (control, side) in ends.handles() {
                let key = Arc::as_ptr(control).cast::<()>() as usize;
                let at = *index.entry(key).or_insert_with(|| {
                    edges.push(Edge {
                        control: Arc::clone(control),
                        writers: Vec::new(),
                        readers: Vec::new(),
                    });
                    edges.len() - 1
                });
                let list = match side {
                    Side::Writer => &mut edges[at].writers,
                    Side::Reader => &mut edges[at].readers,
                };
                if !list.contains(&leaf) {
                    list.push(leaf);
                }
            }
        }
        let outside = edges
            .iter()
            .any(|edge| edge.writers.is_empty() || edge.readers.is_empty());
        if outside {
            out.push_str("  outside [shape=plaintext, label=\"(outside)\"];\n");
        }
        for edge in &edges {
            let label = quote(&edge_label(&*edge.control)).replace('\n', "\\n");
            let style = edge_style(&*edge.control);
            let node = |leaf: &usize| format!("p{leaf}");
            let writers: Vec<String> = if edge.writers.is_empty() {
                vec!["outside".into()]
            } else {
                edge.writers.iter().map(node).collect()
            };
            let readers: Vec<String> = if edge.readers.is_empty() {
                vec!["outside".into()]
            } else {
                edge.readers.iter().map(node).collect()
            };
            for from in &writers {
                for to in &readers {
                    let _ = writeln!(out, "  {from} -> {to} [label={label}{style}];");
                }
            }
        }
        out.push_str("}\n");
        out
    }
}

fn draw<'a>(
    shape: &'a Shape,
    depth: usize,
    out: &mut String,
    leaves: &mut Vec<&'a EndSet>,
    clusters: &mut usize,
) {
    let indent = "  ".repeat(depth);
    match shape {
        Shape::Process {
            name,
            placement,
            ends,
        } => {
            let placement = match placement {
                Placement::Thread => "thread",
                Placement::Task => "task",
                Placement::OsProcess => "OS process",
            };
            let label = quote(&format!("{}\n({placement})", short(name))).replace('\n', "\\n");
            let _ = writeln!(out, "{indent}p{} [label={label}];", leaves.len());
            leaves.push(ends);
        }
        Shape::Composition { kind, parts } => {
            let _ = writeln!(out, "{indent}subgraph cluster_{} {{", *clusters);
            *clusters += 1;
            let _ = writeln!(out, "{indent}  label={}; style=dashed;", quote(kind));
            for part in parts {
                draw(part, depth + 1, out, leaves, clusters);
            }
            let _ = writeln!(out, "{indent}}}");
        }
    }
}

fn edge_label(channel: &dyn ChannelControl) -> String {
    let mut label = channel.channel_name().as_str().to_string();
    if let Some(snapshot) = channel.snapshot() {
        if snapshot.capacity > 0 {
            let _ = write!(label, "\nbuffered {}", snapshot.capacity);
        }
        if snapshot.messages > 0 {
            let plural = if snapshot.messages == 1 { "" } else { "s" };
            let _ = write!(label, "\n{} message{plural}", snapshot.messages);
        }
        if snapshot.poisoned {
            label.push_str("\npoisoned");
        } else if snapshot.readers_retired || snapshot.writers_retired {
            label.push_str("\nretired");
        }
    }
    label
}

fn edge_style(channel: &dyn ChannelControl) -> &'static str {
    match channel.snapshot() {
        Some(snapshot) if snapshot.poisoned => ", color=red, fontcolor=red",
        Some(snapshot) if snapshot.readers_retired || snapshot.writers_retired => ", style=dashed",
        _ => "",
    }
}

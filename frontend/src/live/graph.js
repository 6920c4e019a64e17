import dagre from '@dagrejs/dagre';

export const NODE_W = 150;
export const NODE_H = 44;

// The dependency graph laid out by dagre (left to right: a service right of what it needs).
// Returns {width, height, nodes: [{name, x, y, state}], edges: [{from, to, label, points}]}.
// Edges come from `dependencies` ({name: {condition, restart}}), else from `depends_on`.
export function layout(services) {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 90, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const names = new Set(services.map((s) => s.name));
  for (const s of services) g.setNode(s.name, { width: NODE_W, height: NODE_H });
  for (const s of services) {
    const deps = s.dependencies && typeof s.dependencies === 'object'
      ? s.dependencies
      : Object.fromEntries((s.depends_on || []).map((d) => [d, {}]));
    for (const [dep, how] of Object.entries(deps)) {
      if (!names.has(dep)) continue;
      const label = [how.condition, how.restart ? 'restart' : ''].filter(Boolean).join(', ');
      g.setEdge(dep, s.name, { label, width: label.length * 6.5, height: 14, labelpos: 'c' });
    }
  }
  dagre.layout(g);
  const byName = Object.fromEntries(services.map((s) => [s.name, s]));
  const nodes = g.nodes().map((n) => {
    const { x, y } = g.node(n);
    return { name: n, x, y, state: byName[n] ? byName[n].state : 'unknown' };
  });
  const edges = g.edges().map((e) => {
    const edge = g.edge(e);
    return { from: e.v, to: e.w, label: edge.label, points: edge.points, x: edge.x, y: edge.y };
  });
  const { width, height } = g.graph();
  return { width, height, nodes, edges };
}

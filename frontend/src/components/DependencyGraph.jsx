import { useMemo } from 'react';
import { layout, NODE_H, NODE_W } from '../live/graph.js';
import { stateTone } from '../format.js';

// The services and what each depends on, laid out by dagre; nodes coloured by state, edges
// labelled with their condition. A node is a button: Enter or a click opens the service.
export default function DependencyGraph({ services, onOpen, selected }) {
  const g = useMemo(() => (services && services.length ? layout(services) : null), [services]);
  if (!g) return <p className="empty">No services.</p>;
  const line = (pts) => pts.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
  return (
    <svg className="graph" width={g.width} height={g.height} viewBox={`0 0 ${g.width} ${g.height}`}
      role="group" aria-label="Dependency graph" data-testid="dependency-graph">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M0,0 L10,5 L0,10 z" fill="#8b949e" />
        </marker>
      </defs>
      {g.edges.map((e) => (
        <g key={`${e.from}>${e.to}`} className="edge" data-testid={`edge-${e.from}-${e.to}`}>
          <path d={line(e.points)} markerEnd="url(#arrow)" />
          {e.label && <text x={e.x} y={e.y - 4} textAnchor="middle">{e.label}</text>}
        </g>
      ))}
      {g.nodes.map((n) => (
        <g key={n.name} transform={`translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})`}
          className={`node node-${stateTone(n.state)}${selected === n.name ? ' node-selected' : ''}`}
          role="button" tabIndex={0} aria-label={`${n.name}: ${n.state}. Open`}
          data-testid={`node-${n.name}`} data-state={n.state}
          onClick={() => onOpen(n.name)}
          onKeyDown={(ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onOpen(n.name); } }}>
          <rect width={NODE_W} height={NODE_H} rx="6" />
          <text x={10} y={18} className="node-name">{n.name}</text>
          <text x={10} y={34} className="node-state">{n.state}</text>
        </g>
      ))}
    </svg>
  );
}

// Node's http server on 127.0.0.1:argv[2], keepAliveTimeout argv[3] ms: GET /health is 200,
// GET /conns the number of connections it has accepted.
const http = require("http");
let accepted = 0;
const server = http.createServer((req, res) => {
  const body = req.url === "/conns" ? String(accepted) : "ok";
  res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = Number(process.argv[3]);
server.on("connection", () => { accepted += 1; });
server.listen(Number(process.argv[2]), "127.0.0.1", () => console.log("listening"));
process.on("SIGTERM", () => process.exit(0));

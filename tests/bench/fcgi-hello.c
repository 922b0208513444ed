/*
 * fcgi-hello.c — the cheapest FastCGI answer there is: a libfcgi responder that says hello.
 *
 * The reference beside which tests/bench/http.sh measures the frontend (docs/BENCHMARKS.md,
 * "HTTP"): the web server, libfcgi's own I/O and one small answer, with nothing of ours in
 * between. A test tool, not part of the product. Accepts requests on the socket the web server
 * hands over as standard input (lighttpd's bin-path), one at a time, as ephemeral-fcgi does.
 */
#include <fcgiapp.h>
#include <stdio.h>

static const char hello[] = "Status: 200 OK\r\n"
			    "Content-Type: text/html; charset=utf-8\r\n"
			    "Content-Length: 14\r\n"
			    "\r\n"
			    "Hello, world!\n";

int main(void)
{
	FCGX_Request req;
	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0) {
		fprintf(stderr, "fcgi-hello: FastCGI set-up failed\n");
		return 1;
	}
	while (FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(hello, sizeof(hello) - 1, req.out);
		FCGX_Finish_r(&req);
	}
	return 0;
}

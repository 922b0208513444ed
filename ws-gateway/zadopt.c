/*
 * zadopt.c — ZeroMQ sockets in the gateway's lws event loop: the hub link, the peer ROUTER and
 * the peer ZAP handler are each watched through a duplicate of their ZMQ_FD, adopted by lws as a
 * raw file (lws closes what it adopts; ZeroMQ's own descriptor must outlive that). ZMQ_FD is
 * edge-triggered: its owner drains the socket until zadopt_readable() says nothing is left, after
 * every wake and after every send.
 */
#include "gateway.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct lws *zadopt(struct gateway *gw, void *sock, const char *protocol, const char *what)
{
	int fd, copy;
	size_t sz = sizeof(fd);
	if (zmq_getsockopt(sock, ZMQ_FD, &fd, &sz) < 0) {
		log_errorx("%s: no descriptor for the %s: %s", __func__, what,
			   zmq_strerror(zmq_errno()));
		return NULL;
	}
	if ((copy = dup(fd)) < 0) {
		log_errorx("%s: dup (the %s): %s", __func__, what, strerror(errno));
		return NULL;
	}
	lws_sock_file_fd_type u;
	u.filefd = (lws_filefd_type)copy;
	struct lws *wsi =
	    lws_adopt_descriptor_vhost(gw->vhost, LWS_ADOPT_RAW_FILE_DESC, u, protocol, NULL);
	if (wsi == NULL) {
		/* lws closes an adopted file descriptor only once it has taken it */
		close(copy);
		log_errorx("%s: cannot add the %s to the event loop", __func__, what);
	}
	return wsi;
}

int zadopt_readable(void *sock)
{
	int events = 0;
	size_t sz = sizeof(events);
	return zmq_getsockopt(sock, ZMQ_EVENTS, &events, &sz) == 0 && (events & ZMQ_POLLIN);
}

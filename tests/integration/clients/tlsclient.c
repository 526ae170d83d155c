/*
 * tlsclient: the smallest OpenSSL-API HTTPS client, built by the tests against
 * BoringSSL (Debian's android-libboringssl), against OpenSSL linked in
 * statically, and stripped: the ways a service may carry its TLS library.
 *
 *   tlsclient HOST CAFILE BODYFILE [PATH]
 *
 * POSTs BODYFILE to https://HOST/PATH (Connection: close) and prints
 * "status N", or "failed: reason" and exits 1.
 */
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what)
{
	printf("failed: %s\n", what);
	ERR_print_errors_fp(stderr);
	return 1;
}

int main(int argc, char **argv)
{
	static char body[1 << 20], head[1024], resp[16384];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *a;
	const char *path = argc > 4 ? argv[4] : "/v1/chat/completions";
	SSL_CTX *ctx;
	SSL *ssl;
	FILE *f;
	size_t n;
	int fd = -1, got = 0, r, status = 0;

	if (argc < 4) {
		fprintf(stderr, "usage: tlsclient HOST CAFILE BODYFILE [PATH]\n");
		return 2;
	}
	f = fopen(argv[3], "rb");
	if (!f)
		return fail("cannot read the body");
	n = fread(body, 1, sizeof(body), f);
	fclose(f);
	if (getaddrinfo(argv[1], "443", &hints, &ai) != 0)
		return fail("cannot resolve");
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return fail("cannot connect");
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[2], NULL) != 1)
		return fail("cannot load the CA");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, argv[1]);
	if (SSL_connect(ssl) != 1)
		return fail("handshake");
	snprintf(head, sizeof(head),
		 "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		 path, argv[1], n);
	if (SSL_write(ssl, head, (int)strlen(head)) <= 0 || SSL_write(ssl, body, (int)n) <= 0)
		return fail("write");
	while ((r = SSL_read(ssl, resp + got, (int)(sizeof(resp) - 1 - (size_t)got))) > 0)
		got += r;
	resp[got] = 0;
	if (sscanf(resp, "HTTP/1.1 %d", &status) != 1)
		return fail("no response");
	printf("status %d\n", status);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return status == 200 ? 0 : 1;
}

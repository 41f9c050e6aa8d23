# otpd: the OTP daemon as a container image.
#   docker build -f deploy/otpd.Dockerfile -t otpd .
#   docker run --rm -v otpd-data:/data otpd keys create     # prints an API key
#   docker run --rm -p 8080:8080 -v otpd-data:/data otpd serve --smsc HOST:PORT ...
# Build stage: a static binary (CGO_ENABLED=0: modernc.org/sqlite is pure
# Go; integration/docker_test.go checks that the build is static).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/otpd ./cmd/otpd \
 && mkdir -p /out/data

# Run stage: no shell, no package manager, CA certificates for SMPP over
# TLS, a non-root user (65532) that owns the data directory.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/otpd /usr/local/bin/otpd
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV OTPD_HTTP=0.0.0.0:8080 \
    OTPD_DATA=/data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/otpd"]
CMD ["serve"]

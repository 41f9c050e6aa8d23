# smscsim: the SMSC simulator as a container image.
#   docker build -f deploy/smscsim.Dockerfile -t smscsim .
#   docker run --rm -p 2775:2775 -p 8025:8025 smscsim
# Build stage: a static binary (CGO_ENABLED=0; integration/docker_test.go
# checks that such a build has no dynamic loader and no shared library).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/smscsim ./cmd/smscsim

# Run stage: no shell, no package manager, a non-root user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/smscsim /usr/local/bin/smscsim
USER 65532:65532
# Listen on every interface of the container; flags override these.
ENV SMSCSIM_SMPP=0.0.0.0:2775 \
    SMSCSIM_SMPP_TLS=0.0.0.0:3550 \
    SMSCSIM_HTTP=0.0.0.0:8025
EXPOSE 2775 3550 8025
ENTRYPOINT ["/usr/local/bin/smscsim"]

using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Microsoft.ML.Peft.Hub;

/// <summary>
/// HTTP side of <see cref="PretrainedSource"/>: hub API calls and file downloads into the cache. A download first asks
/// the resolve URL for the file's metadata without following the redirect (the hub answers with the content hash in
/// <c>X-Linked-Etag</c> for LFS files, <c>ETag</c> otherwise), then fetches the content into
/// <c>blobs/{etag}.incomplete</c>, resuming with an HTTP Range request after a dropped connection, verifies the hash
/// (sha256 for LFS files, the git blob SHA-1 for small files) and only then renames the file into place.
/// </summary>
internal sealed class HubDownloader : IDisposable
{
    private const int MaxRedirects = 5;

    private readonly PretrainedSourceOptions _options;
    private readonly HttpClient _http;
    private readonly Uri _endpoint;

    public HubDownloader(PretrainedSourceOptions options)
    {
        _options = options;
        _endpoint = new Uri(options.Endpoint.TrimEnd('/') + "/");
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None })
        {
            Timeout = options.RequestTimeout,
        };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("Microsoft.ML.Peft", "1.0"));
    }

    public void Dispose() => _http.Dispose();

    /// <summary>GET a hub API path as JSON.</summary>
    public async Task<JsonDocument> GetJsonAsync(string relativeUrl, string what, CancellationToken ct)
    {
        var url = new Uri(_endpoint, relativeUrl);
        using var response = await SendAsync(HttpMethod.Get, url, rangeStart: 0, ct).ConfigureAwait(false);
        ThrowIfFailed(response, url, what);
        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        try
        {
            return await JsonDocument.ParseAsync(body, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw new HubException($"{what}: {url} did not return valid JSON ({e.Message})", e);
        }
    }

    /// <summary>Downloads <paramref name="file"/> of <paramref name="repoId"/> at <paramref name="commit"/> into the cache and returns the blob path.</summary>
    public async Task<string> DownloadAsync(HubCache cache, string repoId, string commit, string file, CancellationToken ct)
    {
        string what = $"{repoId}/{file}";
        var resolveUrl = new Uri(_endpoint, $"{repoId}/resolve/{commit}/{EscapePath(file)}");
        Exception? lastError = null;
        for (int attempt = 1; attempt <= Math.Max(1, _options.MaxAttempts); attempt++)
        {
            try
            {
                var (etag, expectedSize, contentUrl) = await HeadAsync(resolveUrl, what, ct).ConfigureAwait(false);
                string blob = cache.BlobPath(BlobName(etag));
                if (File.Exists(blob)) return blob;
                Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
                string partial = blob + ".incomplete";
                await FetchAsync(contentUrl, partial, what, ct).ConfigureAwait(false);
                Verify(partial, etag, expectedSize, what);
                File.Move(partial, blob, overwrite: true);
                return blob;
            }
            catch (Exception e) when (e is IOException or HttpRequestException && e is not HubException && !ct.IsCancellationRequested)
            {
                lastError = e; // dropped connection or server error: try again, resuming from the partial file
            }
        }
        throw new HubException($"{what}: download failed after {_options.MaxAttempts} attempts: {lastError?.Message}", lastError);
    }

    /// <summary>The file's content hash and size, and the URL its bytes come from (the redirect target for LFS files).</summary>
    private async Task<(string Etag, long? Size, Uri ContentUrl)> HeadAsync(Uri resolveUrl, string what, CancellationToken ct)
    {
        for (int hop = 0; hop <= MaxRedirects; hop++)
        {
            using var response = await SendAsync(HttpMethod.Head, resolveUrl, 0, ct).ConfigureAwait(false);
            bool redirect = (int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is not null;
            if (!redirect) ThrowIfFailed(response, resolveUrl, what);
            string? etag = Header(response, "X-Linked-Etag") ?? response.Headers.ETag?.Tag;
            if (etag is null && redirect && !response.Headers.Location!.IsAbsoluteUri)
            {
                // A relative redirect without file metadata is the hub's own (renamed repository): follow it.
                resolveUrl = new Uri(resolveUrl, response.Headers.Location);
                continue;
            }
            if (etag is null) throw new HubException($"{what}: the hub sent no ETag, so the download cannot be verified");
            long? size = long.TryParse(Header(response, "X-Linked-Size"), out long linked) ? linked : response.Content.Headers.ContentLength;
            Uri contentUrl = redirect ? new Uri(resolveUrl, response.Headers.Location!) : resolveUrl;
            return (NormalizeEtag(etag), size, contentUrl);
        }
        throw new HubException($"{what}: more than {MaxRedirects} redirects");
    }

    /// <summary>Appends the missing bytes of <paramref name="url"/> to <paramref name="partial"/>, following redirects.</summary>
    private async Task FetchAsync(Uri url, string partial, string what, CancellationToken ct)
    {
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        for (int hop = 0; hop <= MaxRedirects; hop++)
        {
            using var response = await SendAsync(HttpMethod.Get, url, have, ct).ConfigureAwait(false);
            if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                url = new Uri(url, location);
                continue;
            }
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                // The partial file is not a prefix of this content (e.g. a stale one): start over.
                File.Delete(partial);
                have = 0;
                continue;
            }
            ThrowIfFailed(response, url, what);
            bool resumed = response.StatusCode == HttpStatusCode.PartialContent;
            if (resumed && response.Content.Headers.ContentRange?.From != have)
                throw new HubException($"{what}: server resumed at byte {response.Content.Headers.ContentRange?.From}, expected {have}");
            await using var target = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await body.CopyToAsync(target, 1 << 20, ct).ConfigureAwait(false);
            target.Flush(flushToDisk: true);
            return;
        }
        throw new HubException($"{what}: more than {MaxRedirects} redirects");
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, long rangeStart, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, url);
        if (rangeStart > 0) request.Headers.Range = new RangeHeaderValue(rangeStart, null);
        // The token is for the hub only: never leak it to a CDN or any other host a redirect points at.
        if (_options.Token is { } token && url.Host == _endpoint.Host && url.Port == _endpoint.Port)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Checks the finished file against its ETag: a 64-hex ETag is the sha256 of the content (LFS files), a 40-hex
    /// one the git blob id, SHA-1 of "blob {size}\0" + content (regular files). Other ETags cannot be checked.
    /// </summary>
    private static void Verify(string partial, string etag, long? expectedSize, string what)
    {
        long size = new FileInfo(partial).Length;
        string? actual = null;
        if (etag.Length == 64 && IsHex(etag))
        {
            using var stream = File.OpenRead(partial);
            actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        else if (etag.Length == 40 && IsHex(etag))
        {
            using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            sha1.AppendData(Encoding.ASCII.GetBytes($"blob {size}\0"));
            using var stream = File.OpenRead(partial);
            var buffer = new byte[1 << 20];
            for (int n; (n = stream.Read(buffer)) > 0;) sha1.AppendData(buffer, 0, n);
            actual = Convert.ToHexStringLower(sha1.GetHashAndReset());
        }
        if ((actual is not null && !string.Equals(actual, etag, StringComparison.OrdinalIgnoreCase))
            || (expectedSize is { } expected && expected != size))
        {
            File.Delete(partial);
            throw new HubException(
                $"{what}: downloaded content does not match the hub's checksum (expected {etag}, got {actual ?? "unchecked"}; " +
                $"size {size}, expected {expectedSize?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"}); the file was discarded");
        }
    }

    private static void ThrowIfFailed(HttpResponseMessage response, Uri url, string what)
    {
        if (response.IsSuccessStatusCode) return;
        int status = (int)response.StatusCode;
        string hint = status switch
        {
            401 or 403 => " (private or gated repository? set HF_TOKEN or PretrainedSourceOptions.Token)",
            404 => " (no such repository, revision or file)",
            _ => "",
        };
        string message = $"{what}: {url} answered {status} {response.ReasonPhrase}{hint}";
        // Server errors are worth retrying; client errors are final.
        if (status >= 500) throw new HttpRequestException(message, null, response.StatusCode);
        throw new HubException(message);
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    private static string NormalizeEtag(string etag)
    {
        string e = etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag;
        return e.Trim('"');
    }

    /// <summary>ETags become blob file names; anything but plain characters is hashed into one.</summary>
    private static string BlobName(string etag) =>
        etag.Length is > 0 and <= 128 && etag.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && etag[0] != '.'
            ? etag
            : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(etag)));

    private static bool IsHex(string s) => s.All(char.IsAsciiHexDigit);

    private static string EscapePath(string file) => string.Join('/', file.Split('/').Select(Uri.EscapeDataString));
}

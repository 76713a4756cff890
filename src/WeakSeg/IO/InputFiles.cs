using System.Globalization;

namespace WeakSeg.IO;

/// <summary>
/// Bounds on what reading one input file may cost: its size on disk, and the pixels an image or mask header may declare (checked
/// before any decoder allocates). Defaults suit photographs up to about 7000×7000; the environment variables
/// <c>WEAKSEG_MAX_IMAGE_PIXELS</c> and <c>WEAKSEG_MAX_INPUT_BYTES</c> raise or lower them.
/// </summary>
public static class InputLimits
{
    public const long DefaultMaxImagePixels = 50_000_000;
    public const long DefaultMaxInputBytes = 256L << 20;

    /// <summary>Largest width × height accepted for an image or mask.</summary>
    public static long MaxImagePixels { get; set; } = FromEnvironment("WEAKSEG_MAX_IMAGE_PIXELS", DefaultMaxImagePixels);

    /// <summary>Largest image or mask file read, in bytes.</summary>
    public static long MaxInputBytes { get; set; } = FromEnvironment("WEAKSEG_MAX_INPUT_BYTES", DefaultMaxInputBytes);

    static long FromEnvironment(string name, long fallback) =>
        long.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : fallback;

    /// <summary>Why a header declaring <paramref name="width"/>×<paramref name="height"/> is refused (null when it is within the limit).</summary>
    public static string? PixelProblem(long width, long height) =>
        width <= 0 || height <= 0 ? $"declares {width}x{height} pixels"
        : width * height > MaxImagePixels
            ? $"declares {width}x{height} pixels, more than the limit of {MaxImagePixels:N0} (set WEAKSEG_MAX_IMAGE_PIXELS to allow larger images)"
            : null;
}

/// <summary>
/// Safe reading of dataset files: symbolic links that dangle or loop, FIFOs and devices are named problems instead of a hang, an
/// "unexpected" exception or an unbounded read; a file larger than <see cref="InputLimits.MaxInputBytes"/> is refused before reading.
/// </summary>
public static class InputFiles
{
    /// <summary>Why <paramref name="path"/> cannot be read as an input file (null when it can); <paramref name="what"/> names the
    /// kind of file ("image", "mask").</summary>
    public static string? Problem(string path, string what)
    {
        try
        {
            var info = new FileInfo(path);
            if (info.LinkTarget is { } target)
            {
                FileSystemInfo? final;
                try { final = info.ResolveLinkTarget(returnFinalTarget: true); }
                catch (IOException) { return $"{what} is a symbolic link that loops (it leads back to itself)"; }
                if (final is null || !final.Exists) return $"{what} is a dangling symbolic link (its target {target} does not exist)";
                if (final is DirectoryInfo) return $"{what} is a link to a directory";
                info = new FileInfo(final.FullName);                                    // sizes are the target's, not the link's
            }
            if (Directory.Exists(path)) return $"{what} is a directory";
            if (!info.Exists) return $"{what} file not found";
            // A FIFO, socket or device reports size 0 (or, for /dev/zero and the like, never ends): neither is read.
            if (info.Length == 0) return $"{what} file is empty (or not a regular file: a FIFO or a device)";
            if (info.Length > InputLimits.MaxInputBytes)
                return $"{what} file is {info.Length:N0} bytes, more than the limit of {InputLimits.MaxInputBytes:N0} (set WEAKSEG_MAX_INPUT_BYTES to allow larger files)";
        }
        catch (IOException e) { return $"{what} cannot be read ({e.Message})"; }
        catch (UnauthorizedAccessException e) { return $"{what} cannot be read ({e.Message})"; }
        return null;
    }

    /// <summary>Reads the whole file after <see cref="Problem"/> found none, never more than the size it had (so a file that grows, or
    /// a special file, cannot make the read unbounded). Errors name the file.</summary>
    public static byte[] ReadAllBytes(string path, string what)
    {
        if (Problem(path, what) is { } problem) throw WeakSegException.ForFile(path, problem);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            long length = stream.Length;
            if (length > InputLimits.MaxInputBytes || length == 0) throw WeakSegException.ForFile(path, Problem(path, what) ?? $"{what} changed while it was read");
            var bytes = new byte[length];
            int read = 0;
            while (read < bytes.Length)
            {
                int n = stream.Read(bytes, read, bytes.Length - read);
                if (n == 0) break;
                read += n;
            }
            return read == bytes.Length ? bytes : bytes[..read];
        }
        catch (IOException e) { throw WeakSegException.ForFile(path, $"{what} cannot be read ({e.Message})"); }
        catch (UnauthorizedAccessException e) { throw WeakSegException.ForFile(path, $"{what} cannot be read ({e.Message})"); }
    }
}

using SkiaSharp;
using WeakSeg.IO;

namespace WeakSeg.Data;

/// <summary>Decodes and encodes RGB images with SkiaSharp. Grayscale and CMYK JPEGs are converted to RGB; errors name the file.</summary>
public static class ImageCodec
{
    /// <summary>Reads a JPEG/PNG/BMP/WebP as RGB.</summary>
    public static RgbImage Load(string path)
    {
        return Decode(InputFiles.ReadAllBytes(path, "image"), path);
    }

    /// <summary>Width and height from the file's header only (no pixel decode); errors name the file. This is the cheap check of a
    /// whole dataset before training: unreadable files, special files and images over <see cref="InputLimits.MaxImagePixels"/>.</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        if (InputFiles.Problem(path, "image") is { } problem) throw WeakSegException.ForFile(path, problem);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            using var codec = SKCodec.Create(stream);
            if (codec == null) throw WeakSegException.ForFile(path, "not a readable image (corrupt or unsupported format)");
            if (InputLimits.PixelProblem(codec.Info.Width, codec.Info.Height) is { } tooLarge) throw WeakSegException.ForFile(path, "image " + tooLarge);
            return (codec.Info.Width, codec.Info.Height);
        }
        catch (IOException e) { throw WeakSegException.ForFile(path, $"image cannot be read ({e.Message})"); }
    }

    /// <summary>Decodes encoded image bytes; <paramref name="nameForErrors"/> is used in messages.</summary>
    public static RgbImage Decode(byte[] bytes, string nameForErrors)
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data);
        if (codec == null) throw WeakSegException.ForFile(nameForErrors, "not a readable image (corrupt or unsupported format)");
        if (InputLimits.PixelProblem(codec.Info.Width, codec.Info.Height) is { } tooLarge)      // before the bitmap is allocated
            throw WeakSegException.ForFile(nameForErrors, "image " + tooLarge);
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        if (info.Width <= 0 || info.Height <= 0) throw WeakSegException.ForFile(nameForErrors, "image has no pixels");
        using var bitmap = new SKBitmap(info);
        if (bitmap.GetPixels() == IntPtr.Zero) throw WeakSegException.ForFile(nameForErrors, $"not enough memory to decode a {info.Width}x{info.Height} image");
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result == SKCodecResult.IncompleteInput || result == SKCodecResult.ErrorInInput)
            throw WeakSegException.ForFile(nameForErrors, "image is truncated or corrupt (decoder: " + result + ")");
        if (result != SKCodecResult.Success)
            throw WeakSegException.ForFile(nameForErrors, "image could not be decoded (decoder: " + result + ")");
        var rgb = new byte[info.Width * info.Height * 3];
        unsafe
        {
            byte* s = (byte*)bitmap.GetPixels();
            fixed (byte* d0 = rgb)
            {
                byte* d = d0, end = d0 + rgb.Length;
                for (; d < end; d += 3, s += 4) { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; }
            }
        }
        return new RgbImage(info.Width, info.Height, rgb);
    }

    /// <summary>Encodes as JPEG (quality 0..100) or PNG by the file extension, atomically.</summary>
    public static void Save(string path, RgbImage image, int jpegQuality = 95)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        var format = ext switch
        {
            ".jpg" or ".jpeg" => SKEncodedImageFormat.Jpeg,
            ".png" => SKEncodedImageFormat.Png,
            _ => throw WeakSegException.ForFile(path, "unsupported image extension (use .jpg or .png)"),
        };
        var bytes = Encode(image, format, jpegQuality);
        AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>Writes one 8-bit channel (row-major, <paramref name="width"/>·<paramref name="height"/> bytes) as a greyscale PNG,
    /// atomically.</summary>
    public static void SaveGreyPng(string path, byte[] grey, int width, int height)
    {
        if (grey.Length != (long)width * height) throw new ArgumentException($"expected {width}×{height} bytes, got {grey.Length}");
        var info = new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        unsafe
        {
            byte* dst = (byte*)bitmap.GetPixels();
            for (int y = 0; y < height; y++)
                grey.AsSpan(y * width, width).CopyTo(new Span<byte>(dst + (long)y * bitmap.RowBytes, width));
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var encoded = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(path, encoded.AsSpan());
    }

    public static byte[] Encode(RgbImage image, SKEncodedImageFormat format, int quality = 95)
    {
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var px = image.Pixels;
        unsafe
        {
            byte* dst = (byte*)bitmap.GetPixels();
            for (int i = 0, j = 0; i < px.Length; i += 3, j += 4)
            {
                dst[j] = px[i]; dst[j + 1] = px[i + 1]; dst[j + 2] = px[i + 2]; dst[j + 3] = 255;
            }
        }
        using var img = SKImage.FromBitmap(bitmap);
        using var encoded = img.Encode(format, quality);
        return encoded.ToArray();
    }
}

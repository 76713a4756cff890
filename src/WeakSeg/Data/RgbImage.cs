namespace WeakSeg.Data;

/// <summary>An 8-bit RGB image in row-major HWC order (the layout every WeakSeg stage exchanges).</summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>Width × Height × 3 bytes, row-major, R G B.</summary>
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}x{height} must be positive");
        pixels ??= new byte[checked(width * height * 3)];
        if (pixels.Length != width * height * 3)
            throw new ArgumentException($"pixel buffer has {pixels.Length} bytes, expected {width * height * 3} for {width}x{height} RGB", nameof(pixels));
        Width = width; Height = height; Pixels = pixels;
    }
}

namespace WeakSeg.Data;

/// <summary>A per-pixel class-index map (0 = background, 1..K = classes, 255 = ignore), row-major.</summary>
public sealed class LabelMap
{
    public const byte Ignore = 255;
    public int Width { get; }
    public int Height { get; }
    public byte[] Labels { get; }

    public LabelMap(int width, int height, byte[]? labels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"mask size {width}x{height} must be positive");
        labels ??= new byte[checked(width * height)];
        if (labels.Length != width * height)
            throw new ArgumentException($"label buffer has {labels.Length} bytes, expected {width * height}", nameof(labels));
        Width = width; Height = height; Labels = labels;
    }

    public byte this[int x, int y]
    {
        get => Labels[y * Width + x];
        set => Labels[y * Width + x] = value;
    }

    /// <summary>The distinct class indices present, excluding background 0 and ignore 255, ascending.</summary>
    public int[] ForegroundClasses()
    {
        Span<bool> seen = stackalloc bool[256];
        foreach (var v in Labels) seen[v] = true;
        var list = new List<int>();
        for (int c = 1; c < 255; c++) if (seen[c]) list.Add(c);
        return list.ToArray();
    }
}

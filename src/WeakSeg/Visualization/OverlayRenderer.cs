using SkiaSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.IO;

namespace WeakSeg.Visualization;

/// <summary>
/// One-row visual check of a method's output for one image, composited with SkiaSharp:
/// <c>image | heat map of each class in the maps | pseudo label | ground truth</c>.
/// Every tile has the image's size; tiles are separated by <see cref="Separator"/> white pixels and captioned in a white
/// strip of <see cref="CaptionHeight"/> pixels above them. Heat maps are <see cref="Colormap.Turbo"/> blended 50 % over the
/// image (a map of another size is resized bilinearly first); label maps are VOC colours blended 50 % over the image
/// (255 = ignore in the VOC ignore colour 224,224,192; a label map of another size is resized by nearest neighbour).
/// Blending is per channel <c>(image + colour + 1) / 2</c> in integers.
/// </summary>
public static class OverlayRenderer
{
    /// <summary>White pixels between two tiles.</summary>
    public const int Separator = 3;

    /// <summary>Caption font size in pixels.</summary>
    public const float CaptionFontSize = 11f;

    /// <summary>Height of the caption strip above the tiles: 15 px when this machine can render text, else 0 (no captions).</summary>
    public static int CaptionHeight => CaptionText.Available ? 15 : 0;

    /// <summary>Number of tiles for a panel: 1 + maps + (pseudo ? 1 : 0) + (ground truth ? 1 : 0).</summary>
    public static int TileCount(int mapCount, bool hasPseudo, bool hasGroundTruth) => 1 + mapCount + (hasPseudo ? 1 : 0) + (hasGroundTruth ? 1 : 0);

    /// <summary>Left x of tile <paramref name="index"/> (0 = the image) for images <paramref name="imageWidth"/> wide.</summary>
    public static int TileX(int index, int imageWidth) => index * (imageWidth + Separator);

    /// <summary>Panel width for <paramref name="tiles"/> tiles: tiles·W + (tiles − 1)·separator.</summary>
    public static int PanelWidth(int tiles, int imageWidth) => tiles * imageWidth + (tiles - 1) * Separator;

    /// <summary>Renders the panel (see the class summary). <paramref name="classNames"/> is indexed by class index (0 = background);
    /// classes beyond it are captioned "class N".</summary>
    public static RgbImage RenderPanel(RgbImage image, CamMaps maps, IReadOnlyList<string> classNames, LabelMap? pseudo, LabelMap? groundTruth)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(maps);
        ArgumentNullException.ThrowIfNull(classNames);
        if (maps.Maps.Length != (long)maps.Classes.Length * maps.Height * maps.Width)
            throw new WeakSegException($"maps of '{maps.Name}': {maps.Maps.Length} values do not match [{maps.Classes.Length}, {maps.Height}, {maps.Width}]");

        var tiles = new List<(RgbImage Tile, string Caption)> { (image, "image") };
        for (int i = 0; i < maps.Classes.Length; i++)
        {
            int c = maps.Classes[i];
            var plane = ResizeBilinear(maps.Plane(i), maps.Width, maps.Height, image.Width, image.Height);
            tiles.Add((HeatTile(image, plane), c >= 0 && c < classNames.Count ? classNames[c] : $"class {c}"));
        }
        if (pseudo != null) tiles.Add((LabelTile(image, pseudo), "pseudo label"));
        if (groundTruth != null) tiles.Add((LabelTile(image, groundTruth), "ground truth"));

        int captionHeight = CaptionHeight;
        int width = PanelWidth(tiles.Count, image.Width), height = captionHeight + image.Height;
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var panel = new SKBitmap(info);
        using (var canvas = new SKCanvas(panel))
        {
            canvas.Clear(SKColors.White);
            for (int t = 0; t < tiles.Count; t++)
            {
                using var tile = ToBitmap(tiles[t].Tile);
                canvas.DrawBitmap(tile, TileX(t, image.Width), captionHeight);
            }
            if (captionHeight > 0)
                for (int t = 0; t < tiles.Count; t++)
                    CaptionText.Draw(canvas, tiles[t].Caption, TileX(t, image.Width), image.Width, captionHeight);
        }
        return FromBitmap(panel);
    }

    /// <summary>Renders the panel and writes it as a PNG, atomically (<c>path.tmp</c>, then rename).</summary>
    public static void SavePanel(string path, RgbImage image, CamMaps maps, IReadOnlyList<string> classNames, LabelMap? pseudo, LabelMap? groundTruth)
    {
        if (!string.Equals(Path.GetExtension(path), ".png", StringComparison.OrdinalIgnoreCase))
            throw WeakSegException.ForFile(path, "overlay panels are written as PNG; use a .png file name");
        var panel = RenderPanel(image, maps, classNames, pseudo, groundTruth);
        var bytes = ImageCodec.Encode(panel, SKEncodedImageFormat.Png);
        AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>Per-channel 50 % blend rounded half up: (a + b + 1) / 2.</summary>
    public static byte Blend(byte a, byte b) => (byte)((a + b + 1) >> 1);

    /// <summary>Bilinear resize of a row-major plane (half-pixel centres, edges clamped — PyTorch's align_corners = false).
    /// Returns the plane itself (copied) when the size already matches.</summary>
    public static float[] ResizeBilinear(ReadOnlySpan<float> plane, int srcWidth, int srcHeight, int dstWidth, int dstHeight)
    {
        if (plane.Length != srcWidth * srcHeight) throw new ArgumentException($"plane has {plane.Length} values, expected {srcWidth}x{srcHeight}", nameof(plane));
        if (srcWidth == dstWidth && srcHeight == dstHeight) return plane.ToArray();
        var result = new float[dstWidth * dstHeight];
        float sx = (float)srcWidth / dstWidth, sy = (float)srcHeight / dstHeight;
        for (int y = 0; y < dstHeight; y++)
        {
            float fy = Math.Clamp((y + 0.5f) * sy - 0.5f, 0f, srcHeight - 1);
            int y0 = (int)fy, y1 = Math.Min(y0 + 1, srcHeight - 1);
            float wy = fy - y0;
            for (int x = 0; x < dstWidth; x++)
            {
                float fx = Math.Clamp((x + 0.5f) * sx - 0.5f, 0f, srcWidth - 1);
                int x0 = (int)fx, x1 = Math.Min(x0 + 1, srcWidth - 1);
                float wx = fx - x0;
                float top = plane[y0 * srcWidth + x0] * (1 - wx) + plane[y0 * srcWidth + x1] * wx;
                float bottom = plane[y1 * srcWidth + x0] * (1 - wx) + plane[y1 * srcWidth + x1] * wx;
                result[y * dstWidth + x] = top * (1 - wy) + bottom * wy;
            }
        }
        return result;
    }

    /// <summary>Turbo colours of <paramref name="plane"/> (one value per pixel of the image) blended 50 % over the image.</summary>
    public static RgbImage HeatTile(RgbImage image, float[] plane)
    {
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (int p = 0; p < plane.Length; p++)
        {
            var (r, g, b) = Colormap.Turbo(plane[p]);
            dst[3 * p] = Blend(src[3 * p], r);
            dst[3 * p + 1] = Blend(src[3 * p + 1], g);
            dst[3 * p + 2] = Blend(src[3 * p + 2], b);
        }
        return new RgbImage(image.Width, image.Height, dst);
    }

    /// <summary>VOC colours of <paramref name="labels"/> blended 50 % over the image (nearest neighbour when the sizes differ).</summary>
    public static RgbImage LabelTile(RgbImage image, LabelMap labels)
    {
        var src = image.Pixels;
        var dst = new byte[src.Length];
        var palette = VocPalette.Rgb;
        int w = image.Width, h = image.Height;
        for (int y = 0; y < h; y++)
        {
            int ly = labels.Height == h ? y : Math.Min(labels.Height - 1, (int)((long)y * labels.Height / h));
            for (int x = 0; x < w; x++)
            {
                int lx = labels.Width == w ? x : Math.Min(labels.Width - 1, (int)((long)x * labels.Width / w));
                int c = labels.Labels[ly * labels.Width + lx];
                int p = 3 * (y * w + x);
                dst[p] = Blend(src[p], palette[3 * c]);
                dst[p + 1] = Blend(src[p + 1], palette[3 * c + 1]);
                dst[p + 2] = Blend(src[p + 2], palette[3 * c + 2]);
            }
        }
        return new RgbImage(w, h, dst);
    }

    internal static SKBitmap ToBitmap(RgbImage image)
    {
        var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var px = image.Pixels;
        unsafe
        {
            byte* d = (byte*)bitmap.GetPixels();
            for (int i = 0, j = 0; i < px.Length; i += 3, j += 4)
            {
                d[j] = px[i]; d[j + 1] = px[i + 1]; d[j + 2] = px[i + 2]; d[j + 3] = 255;
            }
        }
        return bitmap;
    }

    internal static RgbImage FromBitmap(SKBitmap bitmap)
    {
        var rgb = new byte[bitmap.Width * bitmap.Height * 3];
        int stride = bitmap.RowBytes;
        unsafe
        {
            byte* s0 = (byte*)bitmap.GetPixels();
            for (int y = 0; y < bitmap.Height; y++)
            {
                byte* s = s0 + (long)y * stride;
                for (int x = 0; x < bitmap.Width; x++, s += 4)
                {
                    int o = 3 * (y * bitmap.Width + x);
                    rgb[o] = s[0]; rgb[o + 1] = s[1]; rgb[o + 2] = s[2];
                }
            }
        }
        return new RgbImage(bitmap.Width, bitmap.Height, rgb);
    }
}

/// <summary>Captions with SkiaSharp's default typeface. <see cref="Available"/> is false when the typeface renders no glyphs
/// (e.g. a headless machine without fonts); panels are then drawn without captions.</summary>
static class CaptionText
{
    static readonly Lazy<bool> Probe = new(ProbeRendering);

    public static bool Available => Probe.Value;

    public static void Draw(SKCanvas canvas, string text, int left, int width, int stripHeight)
    {
        using var font = new SKFont(SKTypeface.Default, OverlayRenderer.CaptionFontSize);
        using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.Save();
        canvas.ClipRect(new SKRect(left, 0, left + width, stripHeight));
        canvas.DrawText(text, left + 2, stripHeight - 4, SKTextAlign.Left, font, paint);
        canvas.Restore();
    }

    /// <summary>Draws a word on white and checks that some pixel became dark.</summary>
    static bool ProbeRendering()
    {
        try
        {
            using var bitmap = new SKBitmap(new SKImageInfo(60, 20, SKColorType.Rgba8888, SKAlphaType.Opaque));
            using (var canvas = new SKCanvas(bitmap))
            {
                canvas.Clear(SKColors.White);
                Draw(canvas, "image", 0, 60, 20);
            }
            for (int y = 0; y < bitmap.Height; y++)
                for (int x = 0; x < bitmap.Width; x++)
                    if (bitmap.GetPixel(x, y).Red < 128) return true;
            return false;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or InvalidOperationException)
        {
            return false;
        }
    }
}

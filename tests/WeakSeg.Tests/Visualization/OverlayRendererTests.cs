using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Tests.Support;
using WeakSeg.Visualization;

namespace WeakSeg.Tests.Visualization;

public sealed class OverlayRendererTests
{
    const int W = 7, H = 5;

    /// <summary>Pixel (x, y) = (10x + 3, 20y + 1, 200 − x·y).</summary>
    static RgbImage TestImage()
    {
        var image = new RgbImage(W, H);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int p = 3 * (y * W + x);
                image.Pixels[p] = (byte)(10 * x + 3);
                image.Pixels[p + 1] = (byte)(20 * y + 1);
                image.Pixels[p + 2] = (byte)(200 - x * y);
            }
        return image;
    }

    /// <summary>Two planes at image size: class 3 all zeros, class 15 all ones.</summary>
    static CamMaps TwoMaps()
    {
        var maps = new float[2 * H * W];
        Array.Fill(maps, 1f, H * W, H * W);
        return new CamMaps("x", maps, [3, 15], H, W);
    }

    static (byte, byte, byte) Pixel(RgbImage image, int x, int y)
    {
        int p = 3 * (y * image.Width + x);
        return (image.Pixels[p], image.Pixels[p + 1], image.Pixels[p + 2]);
    }

    static LabelMap Labels(byte value, int w = W, int h = H)
    {
        var labels = new LabelMap(w, h);
        Array.Fill(labels.Labels, value);
        return labels;
    }

    [Fact]
    public void Panel_SizeAndTilePositions_FollowTheFormula()
    {
        var panel = OverlayRenderer.RenderPanel(TestImage(), TwoMaps(), ClassNames.VocNames, Labels(0), Labels(0));
        // 5 tiles (image, 2 maps, pseudo, ground truth): 5·7 + 4·3 = 47 wide
        Assert.Equal(5, OverlayRenderer.TileCount(2, true, true));
        Assert.Equal(47, OverlayRenderer.PanelWidth(5, W));
        Assert.Equal(47, panel.Width);
        Assert.Equal(OverlayRenderer.CaptionHeight + H, panel.Height);
        int top = OverlayRenderer.CaptionHeight;
        Assert.Equal(20, OverlayRenderer.TileX(2, W));
        // the image tile is the image; separators are white
        Assert.Equal(Pixel(TestImage(), 6, 4), Pixel(panel, 6, top + 4));
        for (int x = 7; x < 10; x++) Assert.Equal(((byte)255, (byte)255, (byte)255), Pixel(panel, x, top + 2));
        Assert.Equal(((byte)255, (byte)255, (byte)255), Pixel(panel, 39, top));
    }

    [Fact]
    public void Panel_WithoutLabels_HasOnlyImageAndMaps()
    {
        var panel = OverlayRenderer.RenderPanel(TestImage(), TwoMaps(), ClassNames.VocNames, null, null);
        Assert.Equal(3 * 7 + 2 * 3, panel.Width);
    }

    [Fact]
    public void HeatTiles_AreTurboBlendedHalfOverTheImage()
    {
        var panel = OverlayRenderer.RenderPanel(TestImage(), TwoMaps(), ClassNames.VocNames, null, null);
        int top = OverlayRenderer.CaptionHeight;
        // zero map at (2,3): image (23, 61, 194) with Turbo(0) = (48, 18, 59): ((23+48+1)/2, (61+18+1)/2, (194+59+1)/2)
        Assert.Equal(((byte)36, (byte)40, (byte)127), Pixel(panel, 10 + 2, top + 3));
        // ones map at (0,0): image (3, 1, 200) with Turbo(1) = (122, 4, 3) → (63, 3, 102)
        Assert.Equal(((byte)63, (byte)3, (byte)102), Pixel(panel, 20 + 0, top + 0));
    }

    [Fact]
    public void LabelTiles_AreVocColoursBlendedOverTheImage_IgnoreInTheIgnoreColour()
    {
        var panel = OverlayRenderer.RenderPanel(TestImage(), TwoMaps(), ClassNames.VocNames, Labels(15), Labels(255));
        int top = OverlayRenderer.CaptionHeight;
        // pseudo tile (index 3, x = 30) at (4,1): image (43, 21, 196), person = (192, 128, 128) → (118, 75, 162)
        Assert.Equal(((byte)118, (byte)75, (byte)162), Pixel(panel, 30 + 4, top + 1));
        // ground truth tile (index 4, x = 40) at (4,1): ignore (224, 224, 192) → (134, 123, 194)
        Assert.Equal(((byte)134, (byte)123, (byte)194), Pixel(panel, 40 + 4, top + 1));
    }

    [Fact]
    public void LabelMapOfAnotherSize_IsResizedByNearestNeighbour()
    {
        var small = new LabelMap(2, 1, [0, 15]);   // left half background, right half person on a 7-wide image
        var panel = OverlayRenderer.RenderPanel(TestImage(), TwoMaps(), ClassNames.VocNames, small, null);
        int top = OverlayRenderer.CaptionHeight;
        // x = 3 → 3·2/7 = 0 (background, black): image (33, 21, 197) → (17, 11, 99)
        Assert.Equal(((byte)17, (byte)11, (byte)99), Pixel(panel, 30 + 3, top + 1));
        // x = 4 → 4·2/7 = 1 (person): image (43, 21, 196) → (118, 75, 162)
        Assert.Equal(((byte)118, (byte)75, (byte)162), Pixel(panel, 30 + 4, top + 1));
    }

    [Fact]
    public void MapOfAnotherSize_IsResizedBilinearly()
    {
        // map [0, 1] (1×2) onto a 4-wide row: half-pixel centres give 0, 0.25, 0.75, 1
        var row = OverlayRenderer.ResizeBilinear(new float[] { 0f, 1f }, 2, 1, 4, 1);
        Assert.Equal(new[] { 0f, 0.25f, 0.75f, 1f }, row);
        var image = new RgbImage(4, 1, new byte[12]);   // black image: blend = (colour + 1) / 2
        var panel = OverlayRenderer.RenderPanel(image, new CamMaps("x", [0f, 1f], [1], 1, 2), ClassNames.VocNames, null, null);
        int top = OverlayRenderer.CaptionHeight;
        // tile 1 starts at x = 4 + 3 = 7; pixel 1 has value 0.25 → Turbo (41, 187, 236) → (21, 94, 118)
        Assert.Equal(((byte)21, (byte)94, (byte)118), Pixel(panel, 7 + 1, top));
    }

    [Fact]
    public void Captions_AreDrawnAboveTheTiles()
    {
        Assert.True(OverlayRenderer.CaptionHeight > 0, "SkiaSharp cannot render text on this machine (captions disabled)");
        var image = new RgbImage(60, 10);
        var panel = OverlayRenderer.RenderPanel(image, new CamMaps("x", new float[600], [1], 10, 60), ClassNames.VocNames, null, null);
        int dark = 0;
        for (int y = 0; y < OverlayRenderer.CaptionHeight; y++)
            for (int x = 0; x < 60; x++)
                if (Pixel(panel, x, y).Item1 < 128) dark++;
        Assert.InRange(dark, 5, 60 * OverlayRenderer.CaptionHeight / 2);
    }

    [Fact]
    public void SavePanel_WritesThePanelAsPng_AndRejectsOtherExtensions()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("sub/panel.png");
        OverlayRenderer.SavePanel(path, TestImage(), TwoMaps(), ClassNames.VocNames, Labels(15), null);
        var read = ImageCodec.Load(path);
        var expected = OverlayRenderer.RenderPanel(TestImage(), TwoMaps(), ClassNames.VocNames, Labels(15), null);
        Assert.Equal(expected.Pixels, read.Pixels);
        Assert.False(File.Exists(path + ".tmp"));
        var bad = dir.File("panel.jpg");
        var e = Assert.Throws<WeakSegException>(() => OverlayRenderer.SavePanel(bad, TestImage(), TwoMaps(), ClassNames.VocNames, null, null));
        Assert.Contains(bad, e.Message);
        Assert.Contains("PNG", e.Message);
    }
}

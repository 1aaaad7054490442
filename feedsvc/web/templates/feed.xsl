<?xml version="1.0" encoding="UTF-8"?>
<!-- A feed as a page for people who open it in a browser (docs/feeds-for-people.md).
     Named by the xml-stylesheet PI of every RSS 2.0 and Atom 1.0 feed; readers
     ignore it. Reads everything from the feed: the only value put in by the
     server is the page language used when a feed has none (the "all" column). -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    exclude-result-prefixes="atom dc">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:variable name="rss" select="/rss/channel"/>
  <xsl:variable name="atom" select="/atom:feed"/>
  <xsl:variable name="title" select="normalize-space($rss/title | $atom/atom:title)"/>
  <xsl:variable name="self"
      select="$rss/atom:link[@rel='self']/@href | $atom/atom:link[@rel='self']/@href"/>
  <xsl:variable name="home"
      select="$rss/link | $atom/atom:link[@rel='alternate']/@href"/>
  <xsl:variable name="language">
    <xsl:choose>
      <xsl:when test="$rss/language"><xsl:value-of select="$rss/language"/></xsl:when>
      <xsl:when test="$atom/@xml:lang"><xsl:value-of select="$atom/@xml:lang"/></xsl:when>
      <xsl:otherwise>{{ default_language|e }}</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>
  <xsl:variable name="format">
    <xsl:choose>
      <xsl:when test="$rss">RSS 2.0</xsl:when>
      <xsl:otherwise>Atom 1.0</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>

  <xsl:template match="/">
    <html lang="{$language}">
      <head>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (<xsl:value-of select="$format"/> feed)</title>
        <style>
{% include "_style.css" %}</style>
      </head>
      <body>
        <p class="muted"><a href="{$home}">All feeds of this site</a></p>
        <h1><xsl:value-of select="$title"/></h1>
        <p><xsl:value-of select="$rss/description | $atom/atom:subtitle"/></p>
        <section class="subscribe" aria-labelledby="subscribe">
          <h2 id="subscribe">How to subscribe</h2>
          <p>This is a web feed (<xsl:value-of select="$format"/>). To follow it, copy
            this address into a feed reader (for example NetNewsWire, Feedly, Thunderbird
            or newsboat):</p>
          <code><xsl:value-of select="$self"/></code>
        </section>
        <h2>Latest items</h2>
        <div class="entries">
          <xsl:apply-templates select="$rss/item | $atom/atom:entry"/>
          <xsl:if test="not($rss/item | $atom/atom:entry)">
            <p>No items right now. Subscribe anyway: new items will appear in your reader.</p>
          </xsl:if>
        </div>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="item">
    <article>
      <xsl:if test="dc:language"><xsl:attribute name="lang"><xsl:value-of select="dc:language"/></xsl:attribute></xsl:if>
      <h3><a href="{link}"><xsl:value-of select="title"/></a></h3>
      <p class="muted"><span><xsl:value-of select="pubDate"/></span>
        <xsl:for-each select="category"> · <xsl:value-of select="."/></xsl:for-each></p>
      <p><xsl:call-template name="unescape">
        <xsl:with-param name="text" select="description"/>
      </xsl:call-template></p>
    </article>
  </xsl:template>

  <xsl:template match="atom:entry">
    <article>
      <xsl:if test="@xml:lang"><xsl:attribute name="lang"><xsl:value-of select="@xml:lang"/></xsl:attribute></xsl:if>
      <h3><a href="{atom:link[not(@rel) or @rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a></h3>
      <p class="muted"><time datetime="{atom:published}"><xsl:value-of
          select="translate(substring(atom:published, 1, 16), 'T', ' ')"/></time>
        <xsl:for-each select="atom:category"> · <xsl:value-of select="@label | @term[not(../@label)]"/></xsl:for-each></p>
      <p><xsl:value-of select="atom:summary"/></p>
    </article>
  </xsl:template>
  <!-- An RSS description is HTML by convention; feedsvc writes the plain-text
       summary escaped once (render/rss.py). Undo exactly that escaping and
       show the result as text: markup never becomes markup here. -->
  <xsl:template name="unescape">
    <xsl:param name="text"/>
    <xsl:choose>
      <xsl:when test="contains($text, '&amp;')">
        <xsl:value-of select="substring-before($text, '&amp;')"/>
        <xsl:variable name="rest" select="substring-after($text, '&amp;')"/>
        <xsl:variable name="length">
          <xsl:choose>
            <xsl:when test="starts-with($rest, 'lt;') or starts-with($rest, 'gt;')">3</xsl:when>
            <xsl:when test="starts-with($rest, 'amp;')">4</xsl:when>
            <xsl:otherwise>0</xsl:otherwise>
          </xsl:choose>
        </xsl:variable>
        <xsl:choose>
          <xsl:when test="starts-with($rest, 'lt;')">&lt;</xsl:when>
          <xsl:when test="starts-with($rest, 'gt;')">&gt;</xsl:when>
          <xsl:otherwise>&amp;</xsl:otherwise>
        </xsl:choose>
        <xsl:call-template name="unescape">
          <xsl:with-param name="text" select="substring($rest, $length + 1)"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
